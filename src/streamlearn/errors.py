"""Every error streamlearn raises on purpose derives from :class:`StreamlearnError`.

The CLI prints ``str(error)`` as one line and exits non-zero, so messages must say what
went wrong *and* what to do about it.
"""

from __future__ import annotations

__all__ = ["BrokerError", "ConfigError", "PipelineError", "StreamlearnError"]


class StreamlearnError(Exception):
    """Base class of streamlearn's own errors."""


class ConfigError(StreamlearnError):
    """A setting has a bad value; the message names the setting and its env var.

    >>> str(ConfigError("kafka_port", "STREAMLEARN_KAFKA_PORT", "'x' is not an integer"))
    "bad setting kafka_port: 'x' is not an integer (set STREAMLEARN_KAFKA_PORT)"
    """

    def __init__(self, setting: str, env: str, problem: str) -> None:
        self.setting = setting
        self.env = env
        super().__init__(f"bad setting {setting}: {problem} (set {env})")


class BrokerError(StreamlearnError):
    """The local Kafka broker could not be resolved, started, reached or stopped."""


class PipelineError(StreamlearnError):
    """A pipeline file or spec is invalid."""
