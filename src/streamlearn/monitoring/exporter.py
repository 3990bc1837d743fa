"""Serve /metrics over HTTP, bound to 127.0.0.1 unless configured otherwise."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

from streamlearn.config import Settings

__all__ = ["serve_metrics"]

log = logging.getLogger(__name__)


def serve_metrics(settings: Settings, registry: CollectorRegistry) -> int | None:
    """Start the exporter thread; returns the port, or None when turned off (port 0)."""
    if not settings.metrics_port:
        return None
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    except OSError as exc:
        from streamlearn.errors import ConfigError

        raise ConfigError(
            "metrics_port",
            "STREAMLEARN_METRICS_PORT",
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({exc})",
        ) from None
    log.info("metrics at http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    return settings.metrics_port
