"""Where and with what a benchmark ran: machine, package versions, broker version."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["describe"]

PACKAGES = (
    "faust-streaming", "aiokafka", "kafka-python", "river", "quixstreams",
    "confluent-kafka", "orjson", "mode-streaming",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def broker_version(bootstrap: str, configured: str | None) -> str:
    """The version the broker's API versions imply, plus the launcher's jar version."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        inferred = ".".join(map(str, admin._client.check_version()))
    finally:
        admin.close()
    if configured:
        return f"{configured} (local launcher; API versions imply {inferred})"
    return f"{inferred} (implied by API versions)"


def describe(bootstrap: str, configured_kafka: str | None) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "platform": platform.platform(),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {**versions(), "kafka broker": broker_version(bootstrap, configured_kafka)},
        "bootstrap": bootstrap,
    }
