#!/usr/bin/env bash
# Debian packages the test suite needs beyond Python, Java and Maven: a real Prometheus
# server (and promtool), docker-compose, which validates docker-compose.yml without an
# engine, chromium, which renders the console dashboard headless, and openssl, which writes
# the client key of the local broker's SSL listener as PEM. Installs only what is missing;
# `make test` and CI call this.
set -euo pipefail

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v prometheus >/dev/null || need+=(prometheus)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v chromium >/dev/null || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
((${#need[@]})) || exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "missing: ${need[*]}: run 'apt-get install ${need[*]}' as root" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
"${sudo[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
