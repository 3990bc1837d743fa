"""The contenders: what each runs, as a command line the harness starts in a subprocess.

Kept free of heavy imports: the modules below it are run with ``python -m``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CONTENDERS", "EXPLORE", "Contender", "RunSpec", "select"]


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
    """``benchmarks.contenders.<module>``; None runs ``streamlearn run`` (via ``launcher``)."""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    uses_kafka: bool = True
    launcher: str = "streamlearn"
    """Module with streamlearn's CLI (``run <pipeline file> --name <name>``)."""

    def argv(self, run: RunSpec) -> list[str]:
        if self.module is None:
            pipeline = Path(__file__).resolve().parent.parent / "pipelines" / f"{run.workload}.py"
            return [sys.executable, "-m", self.launcher, "run", str(pipeline), "--name", run.name]
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


CONTENDERS = (
    Contender("A", "streamlearn (faust agent)"),
    Contender("B", "model alone, no Kafka", "model_only", uses_kafka=False),
    Contender("C", "kafka-python loop", "kafka_python_loop"),
    Contender("C2", "aiokafka getmany loop", "aiokafka_loop", ("--mode", "model")),
    Contender("D", "Quix Streams", "quix_app"),
    Contender("E", "aiokafka forward, no model", "aiokafka_loop", ("--mode", "forward")),
)

EXPLORE = (
    Contender("A-b1024", "A, batch 1024 within 50 ms",
              env={"STREAMLEARN_BATCH_SIZE": "1024", "STREAMLEARN_BATCH_WITHIN": "0.05"}),
    Contender("A-w1ms", "A, batch within 1 ms", env={"STREAMLEARN_BATCH_WITHIN": "0.001"}),
    Contender("A-fastdrain", "A, faust consumer without per-message wait_first",
              launcher="benchmarks.contenders.faust_fast_drain"),
    Contender("A-task", "A's worker, hot path in an app.task on aiokafka getmany",
              launcher="benchmarks.contenders.faust_task"),
    Contender("A-aiokafka", "A's EventProcessor on a bare aiokafka loop", "aiokafka_loop",
              ("--mode", "streamlearn")),
)


def select(keys: list[str] | None, explore: bool) -> list[Contender]:
    """Contenders by key (all main ones by default), plus the explore set if asked."""
    pool = {c.key: c for c in (*CONTENDERS, *EXPLORE)}
    chosen = [pool[k] for k in keys] if keys else list(CONTENDERS)
    if explore:
        chosen += [c for c in EXPLORE if c not in chosen]
    return chosen
