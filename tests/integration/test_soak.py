"""The soak benchmark's code, CI-sized: the fraud worker (derived features, drift detection
on) at half its measured maximum rate for 60 s on the session broker (``make soak`` runs the
same at 70% for 30 minutes on a broker of its own).

The maximum comes from a 20,000-event backlog, too short to fill the per-card windows (a
simulated day, ~173,000 events), and an event costs more once they are full: measured here,
the steady rate is about 0.7 of the short backlog's, hence half of it rather than 70%.

Asserted: every event answered exactly once; the consumer lag stays bounded (median of the
last 10 s, and the lag trend after warm-up, each at most ``LAG_BOUND_S`` seconds of events);
the worker's RSS over the last 10 s is less than ``RSS_MARGIN`` above its median over
seconds 15-25, or over the 10 s from when the feature windows are full if that is later and
still leaves room before the last 10 s. Until the windows are full, state grows by design
(the full state adds ~50 MB to a ~160 MB worker); at ~4,000 events/s they fill at ~42 s,
and the baseline then catches the fill half done: 9.5% measured on a quiet 2-CPU machine.
Hence a 15% margin: a leak of ~100 bytes per event (25 MB over the run's ~250,000 events)
still fails it. Latency is printed, never asserted: on a shared CI machine a timing
assertion would test the machine.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.soak import SoakOptions, run_soak
from benchmarks.soak_report import Limits, Windows
from rich.console import Console

SECONDS = 60.0
FRACTION = 0.5
RSS_MARGIN = 0.15
LAG_BOUND_S = 5.0
WINDOWS = Windows(warmup_s=15.0, rss_base=(15.0, 25.0), last_s=10.0, p99_base=(15.0, 35.0),
                  p99_last_s=20.0)


def test_soak_keeps_lag_and_memory_bounded(kafka: str, tmp_path: Path) -> None:
    opts = SoakOptions(
        seconds=SECONDS, fraction=FRACTION, step_s=1.0, windows=WINDOWS,
        limits=Limits(rss_growth=RSS_MARGIN, lag_s=LAG_BOUND_S),
        ceiling_events=20_000, ceiling_reps=1, ceiling_warmup=0, out_dir=tmp_path,
    )
    started = time.monotonic()
    built = run_soak(opts, kafka, Console(width=120))
    criteria = built["criteria"]
    print(f"soak of {SECONDS:g} s at {built['rate']:,.0f} events/s in "
          f"{time.monotonic() - started:.0f} s; p99 {criteria['p99']['measured']}")

    assert built["ceiling"]["events_per_s"], built["ceiling"]
    assert criteria["answers"]["passed"], criteria["answers"]["measured"]
    assert criteria["lag"]["passed"], criteria["lag"]["measured"]
    assert criteria["rss"]["passed"], criteria["rss"]["measured"]
    assert len(built["samples"]) == SECONDS, len(built["samples"])
    table = (tmp_path / "soak.md").read_text()
    assert "| lag bounded |" in table and "![lag, RSS and p99 over time](soak.png)" in table
    assert (tmp_path / "soak.png").read_bytes().startswith(b"\x89PNG")
