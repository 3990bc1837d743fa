"""The soak benchmark's code, CI-sized: the fraud worker (7 per-card windowed features, drift
detection on) warmed up to its steady state, then fed at 35% of its maximum rate on that
state for 60 s, on the session broker (``make soak`` runs the same at 70% for 30 minutes).

Warm-up: a backlog of ~197,000 events, a full day and a minute of event time (the longest
window plus the lateness) plus 10%: every one of the 2,000 cards is seen by event ~3,600
and none idles past the 2-day TTL, so after it the feature state neither grows nor shrinks
(held events level off at ~182,000, measured in process over 2.4 million events).
The maximum is then measured on that warm state (a burst of 30,000 more events produced at
once, counted from when the producer is done): on fresh state an event costs less (in
process, 65 µs against ~110 once the windows are full), and a rate measured there is one
the worker cannot hold (the test this replaces fell behind at 50% of such a rate in CI).
35% of the warm (backlog) maximum, not the long soak's 70% of the paced one: on a 2-CPU
runner the soak's own feed, reader and broker take much of the second CPU, and the rate the
worker holds under them was 52-63% of the backlog maximum here (``make soak`` measures it;
here it would cost another ~40 s). At 50%, one CI run fell behind (4,106 ev/s against a
burst maximum of 8,212: lag 34,000 events after a minute). This test is about
boundedness, not capacity.

Asserted, and nothing else about performance (latency is printed, never asserted: on a
shared CI machine a timing assertion tests the machine):

- **lag bounded**: the median lag of the last 10 s, and the growth the least-squares trend
  of the lag from 10 s to the end implies, are each at most ``LAG_BOUND_S`` seconds of
  events. A worker that keeps up commits once a second and pauses for each checkpoint
  (every 100,000 events or 60 s, a ~10 MB state write it waits for), so its lag swings between 0 and
  2-3 s of events; one that cannot keep up falls behind by the shortfall every second, and
  5 s of events is reached over the 50 s by a shortfall of 10%.
- **RSS**: the median RSS of the last 10 s is less than ``RSS_MARGIN`` (10%, the long
  soak's criterion) above its median over seconds 10-20. The state is full before the feed
  starts; what can still move is buffers (librdkafka's queues follow the lag, and each
  checkpoint's records make spikes of ~20 MB that the medians leave out): 0.0% in the three
  runs of this test here, -1.8% and 0.0% in 1- and 5-minute soaks. 10% of the ~220-230 MB
  worker is ~22 MB, so a leak of 100-180 bytes per event over the minute's 125,000-225,000
  events (35-50% of a warm maximum of 4,200-8,200 ev/s here) fails it.
- every event answered exactly once, and the report (table, PNG) written.

106-128 s in the runs here (warm-up 33-46 s with the machine quiet or shared, the burst
~6 s, the soak 60 s, generating, draining and the report a few seconds), plus the session
broker's start if it is the first test.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.soak import SoakOptions, run_soak
from benchmarks.soak_report import Limits, Windows
from rich.console import Console

SECONDS = 60.0
FRACTION = 0.35
RSS_MARGIN = 0.10
LAG_BOUND_S = 5.0
WINDOWS = Windows(warmup_s=10.0, rss_base=(10.0, 20.0), last_s=10.0, p99_base=(10.0, 30.0),
                  p99_last_s=20.0)


def test_soak_on_warm_state_keeps_lag_and_memory_bounded(kafka: str, tmp_path: Path) -> None:
    opts = SoakOptions(
        seconds=SECONDS, fraction=FRACTION, step_s=1.0, windows=WINDOWS,
        limits=Limits(rss_growth=RSS_MARGIN, lag_s=LAG_BOUND_S),
        ceiling_events=30_000, ceiling_reps=1, paced_max_s=0.0, out_dir=tmp_path,
    )
    started = time.monotonic()
    built = run_soak(opts, kafka, Console(width=120))
    criteria = built["criteria"]
    print(f"soak of {SECONDS:g} s at {built['rate']:,.0f} events/s (warm maximum "
          f"{built['ceiling']['events_per_s']:,.0f}) in {time.monotonic() - started:.0f} s "
          f"(warm-up {built['warmup']['seconds']:.0f} s); "
          f"lag {criteria['lag']['measured']}; RSS {criteria['rss']['measured']}; "
          f"p99 {criteria['p99']['measured']}; machine saturated in "
          f"{(built['saturated'] or 0) * 100:.0f}% of the seconds")

    assert built["ceiling"]["events_per_s"], built["ceiling"]
    assert criteria["answers"]["passed"], criteria["answers"]["measured"]
    assert criteria["lag"]["passed"], criteria["lag"]["measured"]
    assert criteria["rss"]["passed"], criteria["rss"]["measured"]
    assert len(built["samples"]) == SECONDS, len(built["samples"])
    table = (tmp_path / "soak.md").read_text()
    assert "| lag bounded |" in table and "![lag, RSS and p99 over time](soak.png)" in table
    assert (tmp_path / "soak.png").read_bytes().startswith(b"\x89PNG")
