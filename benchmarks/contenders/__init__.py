"""The contenders: what each runs, as a command line the harness starts in a subprocess.

Kept free of heavy imports: the modules below it are run with ``python -m``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CONTENDERS", "STREAMLEARN_ENV", "Contender", "RunSpec", "select"]


@dataclass(frozen=True)
class RunSpec:
    """Where one run of one contender reads and writes."""

    bootstrap: str
    workload: str
    input_topic: str
    name: str
    """Fresh per run: the consumer group and output topic derive from it."""
    events_file: Path
    state_dir: Path

    @property
    def output_topic(self) -> str:
        return f"{self.name}.predictions"

    @property
    def group(self) -> str:
        return f"streamlearn-{self.name}"


@dataclass(frozen=True)
class Contender:
    key: str
    title: str
    module: str | None = None
    """``benchmarks.contenders.<module>``; None runs ``python -m streamlearn run``."""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    uses_kafka: bool = True

    def argv(self, run: RunSpec) -> list[str]:
        if self.module is None:
            pipeline = Path(__file__).resolve().parent.parent / "pipelines" / f"{run.workload}.py"
            return [sys.executable, "-m", "streamlearn", "run", str(pipeline), "--name", run.name]
        command = [sys.executable, "-m", f"benchmarks.contenders.{self.module}"]
        if not self.uses_kafka:
            return [*command, "--events-file", str(run.events_file), "--workload", run.workload]
        return [
            *command,
            "--bootstrap", run.bootstrap,
            "--input", run.input_topic,
            "--output", run.output_topic,
            "--group", run.group,
            "--workload", run.workload,
            *self.args,
        ]


# The worker refuses to start against an external broker (STREAMLEARN_BOOTSTRAP, which the
# harness always sets) without a key to sign its model snapshots; any non-empty one will do.
STREAMLEARN_ENV = {"STREAMLEARN_MODEL_KEY": "bench-key"}

CONTENDERS = (
    Contender("A", "streamlearn (batched confluent-kafka hot path)", env=STREAMLEARN_ENV),
    Contender("B", "model alone, no Kafka", "model_only", uses_kafka=False),
    Contender("C", "kafka-python loop", "kafka_python_loop"),
    Contender("C2", "aiokafka getmany loop", "aiokafka_loop", ("--mode", "model")),
    Contender("C3", "confluent-kafka loop", "confluent_loop", ("--mode", "model")),
    Contender("D", "Quix Streams", "quix_app"),
    Contender("E", "aiokafka forward, no model", "aiokafka_loop", ("--mode", "forward")),
    Contender("E3", "confluent-kafka forward, no model", "confluent_loop", ("--mode", "forward")),
)


def select(keys: list[str] | None) -> list[Contender]:
    """Contenders by key, in the order given; every one when ``keys`` is empty."""
    pool = {c.key: c for c in CONTENDERS}
    unknown = [k for k in keys or [] if k not in pool]
    if unknown:
        raise ValueError(f"unknown contenders {unknown}; known: {', '.join(pool)}")
    return [pool[k] for k in keys] if keys else list(CONTENDERS)
