"""How big a benchmark run is: full size (``make bench``) or smoke (CI)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["EXPLORE", "FULL", "SMOKE", "Options"]

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Options:
    events: int = 20_000
    """Backlog each contender processes in the throughput phase."""
    reps: int = 3
    warmup_reps: int = 1
    """Leading interleaved rounds whose results are discarded."""
    latency_events: int = 5_000
    latency_warmup: int = 500
    """Events sent (paced) before the measured ones, once the contender is live."""
    latency_reps: int = 3
    latency_contenders: tuple[str, ...] = ("A", "E", "C2", "C", "D")
    latency_workloads: tuple[str, ...] = ("logreg", "tree")
    min_latency_rate: float = 100.0
    workloads: tuple[str, ...] = ("logreg", "tree")
    contenders: tuple[str, ...] = ()
    """Throughput contenders by key; empty means every main one."""
    explore: bool = False
    profile: tuple[str, ...] = ()
    """Contenders to run once more under py-spy, per workload."""
    smoke: bool = False
    out_dir: Path = RESULTS
    stem: str = "latest"

    def with_(self, **changes: object) -> Options:
        return replace(self, **changes)  # type: ignore[arg-type]


FULL = Options()
EXPLORE = Options(
    contenders=("A", "C2"),
    latency_contenders=("A", "E"),
    explore=True,
    profile=("A", "A-task"),
    stem="explore",
)
SMOKE = Options(
    events=300,
    reps=1,
    warmup_reps=0,
    latency_events=100,
    latency_warmup=20,
    latency_reps=1,
    latency_contenders=("A", "E"),
    latency_workloads=("logreg",),
    smoke=True,
    stem="smoke",
)
