"""How big a benchmark run is: full size (``make bench``), smoke (CI), or explore (profiles)."""

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
    latency_contenders: tuple[str, ...] = ("A", "E3", "E", "C3", "C2", "C", "D")
    latency_workloads: tuple[str, ...] = ("logreg", "tree")
    min_latency_rate: float = 100.0
    workloads: tuple[str, ...] = ("logreg", "tree", "fraud", "fraud_raw")
    """fraud runs with fraud_raw (its baseline: no derived features) in the same rounds."""
    contenders: tuple[str, ...] = ()
    """Throughput contenders by key; empty means every one."""
    profile: tuple[str, ...] = ()
    """Contenders to run once more under py-spy, per workload."""
    snapshot_reps: int = 7
    """Timed ``build_snapshot`` calls per workload (in process, no Kafka); median reported."""
    feature_entities: int = 100_000
    """Entities in one partition's feature state for the memory figures (in process)."""
    feature_events_per_entity: int = 5
    feature_reps: int = 5
    """Timed passes of the derived features alone over the fraud stream; median reported."""
    smoke: bool = False
    out_dir: Path = RESULTS
    stem: str = "latest"

    def with_(self, **changes: object) -> Options:
        return replace(self, **changes)  # type: ignore[arg-type]


FULL = Options()
# Where A's CPU goes, next to the loop a user would write on the same client.
EXPLORE = Options(
    workloads=("logreg", "tree"),
    contenders=("A", "C3"),
    latency_contenders=("A", "E3"),
    profile=("A", "C3"),
    stem="explore",
)
SMOKE = Options(
    events=300,
    reps=1,
    warmup_reps=0,
    latency_events=100,
    latency_warmup=20,
    latency_reps=1,
    latency_contenders=("A", "E3", "E"),
    latency_workloads=("logreg",),
    snapshot_reps=2,
    feature_entities=2_000,
    feature_reps=2,
    smoke=True,
    stem="smoke",
)
