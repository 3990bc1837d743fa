"""The soak run's figures over time, its pass criteria, and its report (JSON, markdown, PNG).

The soak starts on warm state (``benchmarks.soak``: the warm-up backlog filled the feature
windows and the key space first), so "after warm-up" below only leaves out the paced feed's
first minutes. Criteria, with the 30-minute windows (``Windows.scaled`` keeps their
proportions for other durations):

- **lag bounded**: the median lag of the last minute is at most ``Limits.lag_s`` seconds of
  events at the target rate, and the least-squares trend of the lag after the first 2
  minutes adds at most as much over that span. The worker commits about once a second, so
  a healthy one sits between 0 and a couple of seconds of events.
- **RSS**: the median RSS of the last minute is less than ``Limits.rss_growth`` (10%)
  above the median of minutes 2-3.
- **p99**: the p99 latency of events sent in the last 5 minutes is at most
  ``Limits.p99_ratio`` (1.5x) the p99 of minutes 5-10 (a p99 below 1 ms counts as 1 ms,
  as in the harness).
- **answers**: every event answered exactly once, and the worker never exited.

>>> w = Windows.scaled(60.0)
>>> w.warmup_s, w.rss_base, w.last_s, w.p99_base, w.p99_last_s
(4.0, (4.0, 6.0), 2.0, (10.0, 20.0), 10.0)
>>> from benchmarks.soak_probes import Progress
>>> ticks = [Progress(t, 100 * t * t, t / 10, 100.0 + t) for t in range(11)]
>>> [(r["to"], r["events_per_s"], r["rss_mb"]) for r in progress_rows(ticks, 2)]
[(6400, 900.0, 108.0), (10000, 1800.0, 110.0)]
>>> from benchmarks.stats import percentile
>>> values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
>>> hist_percentile(Counter(values), 90) == percentile(values, 90), hist_percentile({}, 99)
(True, None)
"""

from __future__ import annotations

import itertools
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks.report import _num, _table
from benchmarks.soak_probes import PredictionReader, Progress, Sample
from benchmarks.stats import median

if TYPE_CHECKING:
    from benchmarks.soak import Burst, PacedMax, SoakOptions, SoakRun, WarmUp

__all__ = ["Limits", "Windows", "build", "burst_line", "hist_percentile", "paced_line",
           "print_summary", "progress_line", "progress_rows", "saturation", "warmup_line",
           "write"]

FULL_S = 1800.0
ROWS = 30
"""Rows of the over-time table (a minute each in a 30-minute run)."""


@dataclass(frozen=True)
class Windows:
    """Where the criteria look, in seconds from the feed's start."""

    warmup_s: float
    """The lag trend starts here (the state is warm from 0: this is the feed's start)."""
    rss_base: tuple[float, float]
    last_s: float
    """RSS and lag: the run's last ``last_s`` seconds."""
    p99_base: tuple[float, float]
    p99_last_s: float

    @classmethod
    def scaled(cls, seconds: float) -> Windows:
        """The 30-minute windows (the lag trend from 2 min, RSS minute 2-3 against the
        last, p99 minutes 5-10 against the last 5), in proportion to ``seconds``."""
        def at(full_s: float) -> float:
            return full_s * seconds / FULL_S

        return cls(at(120), (at(120), at(180)), at(60), (at(300), at(600)), at(300))


@dataclass(frozen=True)
class Limits:
    rss_growth: float = 0.10
    p99_ratio: float = 1.5
    lag_s: float = 5.0
    """Lag bound, in seconds of events at the target rate."""


def hist_percentile(counts: Mapping[int, int], q: float) -> float | None:
    """``stats.percentile`` of the values a histogram (value -> count) holds."""
    items = sorted(counts.items())
    total = sum(count for _, count in items)
    if not total:
        return None

    def at(rank: int) -> int:
        seen = 0
        for value, count in items:
            seen += count
            if seen > rank:
                return value
        return items[-1][0]

    pos = (total - 1) * q / 100
    low = int(pos)
    return at(low) + (at(min(low + 1, total - 1)) - at(low)) * (pos - low)


def merged(reader: PredictionReader, step_s: float, start: float, end: float) -> Counter[int]:
    """Latencies of the events sent within [start, end) (whole windows only)."""
    total: Counter[int] = Counter()
    for index in range(round(start / step_s), round(end / step_s)):
        total.update(reader.window(index))
    return total


def between(samples: Iterable[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if start < s.t <= end]


def _median_rss(samples: Iterable[Sample]) -> float | None:
    return median(s.rss_mb for s in samples)


def lag_criterion(run: SoakRun, opts: SoakOptions, w: Windows) -> dict[str, Any]:
    bound = opts.limits.lag_s * run.rate
    final = median(s.lag for s in between(run.samples, opts.seconds - w.last_s, opts.seconds))
    after = [s for s in run.samples if s.t >= w.warmup_s]
    trend = None
    if len(after) >= 2:
        fit = statistics.linear_regression([s.t for s in after], [s.lag for s in after])
        trend = fit.slope * (after[-1].t - after[0].t)
    passed = final is not None and trend is not None and final <= bound and trend <= bound
    return {"name": "lag bounded", "passed": passed, "final_median": final,
            "trend_events": trend, "bound_events": bound,
            "measured": f"last {w.last_s:g} s median {_num(final)}; trend after "
                        f"{w.warmup_s:g} s {_num(trend)} events",
            "limit": f"both <= {_num(bound)} ({opts.limits.lag_s:g} s of events)"}


def rss_criterion(run: SoakRun, opts: SoakOptions, w: Windows) -> dict[str, Any]:
    base = _median_rss(between(run.samples, *w.rss_base))
    last = _median_rss(between(run.samples, opts.seconds - w.last_s, opts.seconds))
    growth = last / base - 1 if base and last else None
    return {"name": "RSS growth after warm-up", "base_mb": base, "last_mb": last,
            "growth": growth, "passed": growth is not None and growth < opts.limits.rss_growth,
            "measured": f"{_num(base, 1)} MB ({w.rss_base[0]:g}-{w.rss_base[1]:g} s) -> "
                        f"{_num(last, 1)} MB (last {w.last_s:g} s): "
                        f"{_num(None if growth is None else growth * 100, 1)}%",
            "limit": f"< {opts.limits.rss_growth * 100:g}%"}


def p99_criterion(run: SoakRun, opts: SoakOptions, w: Windows) -> dict[str, Any]:
    base = hist_percentile(merged(run.reader, opts.step_s, *w.p99_base), 99)
    last = hist_percentile(merged(run.reader, opts.step_s, opts.seconds - w.p99_last_s,
                                  opts.seconds), 99)
    ratio = last / max(base, 1.0) if base is not None and last is not None else None
    return {"name": "p99 latency, end against early", "base_ms": base, "last_ms": last,
            "ratio": ratio, "passed": ratio is not None and ratio <= opts.limits.p99_ratio,
            "measured": f"{_num(base, 1)} ms ({w.p99_base[0]:g}-{w.p99_base[1]:g} s) -> "
                        f"{_num(last, 1)} ms (last {w.p99_last_s:g} s): {_num(ratio, 2)}x",
            "limit": f"<= {opts.limits.p99_ratio:g}x"}


def answers_criterion(run: SoakRun, opts: SoakOptions) -> dict[str, Any]:
    missing = run.feed.produced - run.reader.answered
    return {"name": "every event answered once", "missing": missing,
            "duplicates": run.reader.duplicates, "error": run.error,
            "passed": missing == 0 and run.reader.duplicates == 0 and run.error is None,
            "measured": f"{run.reader.answered:,}/{run.feed.produced:,} answered, "
                        f"{run.reader.duplicates} duplicates"
                        + (f"; {run.error.splitlines()[0]}" if run.error else ""),
            "limit": f"all within {opts.drain_timeout:g} s of the last send, no duplicates"}


def _per_s(prev: Sample | None, last: Sample, attr: str) -> float | None:
    if prev is None or last.t <= prev.t:
        return None
    return float(getattr(last, attr) - getattr(prev, attr)) / (last.t - prev.t)


def _pct(share: float | None) -> float | None:
    return None if share is None else share * 100


def over_time(run: SoakRun, opts: SoakOptions) -> list[dict[str, Any]]:
    """One row per 1/30 of the run: rates, lag, RSS, CPU and latency."""
    row_s = opts.seconds / ROWS
    rows = []
    prev: Sample | None = None
    for i in range(ROWS):
        mine = between(run.samples, i * row_s, (i + 1) * row_s)
        if not mine:
            continue
        # Nothing is sent before t = 0; the worker's CPU then is its start-up.
        sent = _per_s(prev or Sample(0.0, 0, 0, 0, 0, None, 0.0, 0.0, 0.0), mine[-1],
                      "produced")
        cpu = {attr: _per_s(prev or mine[0], mine[-1], attr)
               for attr in ("cpu_s", "driver_cpu_s", "machine_busy_s")}
        latency = merged(run.reader, opts.step_s, i * row_s, (i + 1) * row_s)
        rows.append({
            "from_s": i * row_s, "to_s": (i + 1) * row_s, "sent_per_s": sent,
            "lag_median": median(s.lag for s in mine), "lag_max": max(s.lag for s in mine),
            "rss_mb": _median_rss(mine), **{f"{k[:-2]}_pct": _pct(v) for k, v in cpu.items()},
            "p50_ms": hist_percentile(latency, 50), "p99_ms": hist_percentile(latency, 99),
        })
        prev = mine[-1]
    return rows


def latency_windows(run: SoakRun, opts: SoakOptions) -> list[dict[str, Any]]:
    out = []
    for index in range(int(opts.seconds / opts.step_s)):
        counts = run.reader.window(index)
        if counts:
            out.append({"t": index * opts.step_s, "events": sum(counts.values()),
                        "p50_ms": hist_percentile(counts, 50),
                        "p99_ms": hist_percentile(counts, 99), "max_ms": max(counts)})
    return out


def progress_rows(progress: Sequence[Progress], parts: int = 10) -> list[dict[str, Any]]:
    """The worker's rate, CPU per event and RSS over each ``1/parts`` of the outputs of a
    phase, counted from its first sample with an output (a row ends at the first sample
    that reaches its share)."""
    # From the first sample with an output: the worker's start-up is not an event's cost.
    start = next((i for i, p in enumerate(progress) if p.outputs > progress[0].outputs), None)
    if start is None or start == len(progress) - 1:
        return []
    origin = progress[0].outputs
    progress = progress[start:]
    base, total = progress[0].outputs, progress[-1].outputs - progress[0].outputs
    rows, prev = [], progress[0]
    for k in range(1, parts + 1):
        end = next((p for p in progress if p.outputs - base >= total * k / parts), None)
        if end is None or end.t <= prev.t or end.outputs <= prev.outputs:
            continue
        done = end.outputs - prev.outputs
        rows.append({"from": prev.outputs - origin, "to": end.outputs - origin,
                     "seconds": end.t - prev.t, "events_per_s": done / (end.t - prev.t),
                     "cpu_us_per_event": (end.cpu_s - prev.cpu_s) / done * 1e6,
                     "rss_mb": end.rss_mb})
        prev = end
    return rows


def warmup_line(warm: WarmUp) -> str:
    rows = progress_rows(warm.progress)
    if not rows:
        return f"warm-up: {warm.events:,} events"
    first, last = rows[0], rows[-1]
    return (f"warm-up: {warm.events:,} events in {_num(warm.seconds)} s; first tenth "
            f"{_num(first['events_per_s'])} ev/s at {_num(first['cpu_us_per_event'])} µs "
            f"CPU/event, last tenth {_num(last['events_per_s'])} ev/s at "
            f"{_num(last['cpu_us_per_event'])} µs; from event {warm.steady_from:,} on "
            f"{_num(warm.tail_events_per_s)} ev/s; RSS {_num(first['rss_mb'], 1)} -> "
            f"{_num(last['rss_mb'], 1)} MB")


def burst_line(b: Burst) -> str:
    return (f"  burst of {b.events:,} (produced in {b.produced_s:.1f} s): "
            f"{_num(b.events_per_s)} ev/s over the {b.counted:,} answered after, "
            f"{_num(b.cpu_us_per_event)} µs CPU/event")


SATURATED = 0.95
"""A sample period in which the machine's CPUs were this busy (all of them) is saturated."""


def saturation(samples: Sequence[Sample]) -> float | None:
    """The share of sample periods in which the machine was saturated: a worker that falls
    behind then may lack CPU rather than capacity (the soak's own feed, reader and broker
    share the machine).

    >>> ncpu = os.cpu_count() or 1
    >>> samples = [Sample(t, 0, 0, 0, 0, None, 0.0, 0.0, t * b * ncpu)
    ...            for t, b in [(1, 0.5), (2, 0.99), (3, 0.6)]]
    >>> saturation(samples)
    0.5
    """
    cpus = os.cpu_count() or 1
    busy = [(b.machine_busy_s - a.machine_busy_s) / (b.t - a.t) / cpus
            for a, b in itertools.pairwise(samples) if b.t > a.t]
    return sum(x >= SATURATED for x in busy) / len(busy) if busy else None


def paced_line(m: PacedMax) -> str:
    return (f"  fed {_num(m.fed)} ev/s for {m.seconds:g} s: answered {_num(m.events_per_s)} "
            f"ev/s at {_num(m.cpu_us_per_event)} µs CPU/event, {m.behind:,} behind when the "
            f"feed stopped, drained in {_num(m.drain_s, 1)} s")


def build(run: SoakRun, environment: dict[str, Any], opts: SoakOptions) -> dict[str, Any]:
    w = opts.windows
    criteria = {"lag": lag_criterion(run, opts, w), "rss": rss_criterion(run, opts, w),
                "p99": p99_criterion(run, opts, w), "answers": answers_criterion(run, opts)}
    last = run.samples[-1] if run.samples else None
    warm = run.warmup
    return {
        **environment,
        "options": {"seconds": opts.seconds, "fraction": opts.fraction, "step_s": opts.step_s,
                    "windows": asdict(w), "limits": asdict(opts.limits),
                    "warmup_margin": opts.warmup_margin,
                    "ceiling_events": opts.ceiling_events, "ceiling_reps": opts.ceiling_reps,
                    "paced_max_s": opts.paced_max_s, "overfeed": opts.overfeed},
        "warmup": {**warm.to_dict(), "rows": progress_rows(warm.progress),
                   "progress": [asdict(p) for p in warm.progress]},
        "ceiling": {"events_per_s": run.rate / opts.fraction,
                    "backlog_events_per_s": run.backlog_rate,
                    "bursts": [b.to_dict() for b in run.bursts],
                    "paced": run.paced.to_dict() if run.paced else None},
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "rate": run.rate,
        "saturated": saturation(run.samples),
        "drift_at_s": (run.feed.drift_at - run.feed.skip) / run.rate,
        "windows": asdict(w),
        "sent_per_s": last.produced / last.t if last else None,
        "sent": run.feed.produced, "answered": run.reader.answered,
        "drain_s": run.drain_s, "error": run.error,
        "criteria": criteria,
        "passed": all(c["passed"] for c in criteria.values()),
        "rows": over_time(run, opts),
        "latency_windows": latency_windows(run, opts),
        "samples": [{**asdict(s), "lag": s.lag} for s in run.samples],
    }


def progress_line(sample: Sample, reader: PredictionReader, step_s: float) -> str:
    """The last sample, and the p99 of the window two steps back (in, unless the worker lags)."""
    p99 = hist_percentile(reader.window(int(sample.t / step_s) - 2), 99)
    return (f"{sample.t:>6.0f} s  sent {sample.produced:>10,}  lag {sample.lag:>7,}  "
            f"RSS {_num(sample.rss_mb, 1):>6} MB  p99 {_num(p99)} ms")


CRITERIA_HEAD = ("criterion", "measured", "limit", "pass")
ROW_HEAD = ("from", "to", "sent ev/s", "lag median", "lag max", "RSS MB", "worker CPU %",
            "feed+reader CPU %", "machine busy %", "p50 ms", "p99 ms")


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}" if seconds % 1 else \
        f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _criteria_rows(built: dict[str, Any]) -> list[tuple[str, ...]]:
    return [(c["name"], c["measured"], c["limit"], "yes" if c["passed"] else "**no**")
            for c in built["criteria"].values()]


def _over_time_rows(built: dict[str, Any]) -> list[tuple[str, ...]]:
    return [(_clock(r["from_s"]), _clock(r["to_s"]), _num(r["sent_per_s"]),
             _num(r["lag_median"]), _num(r["lag_max"]), _num(r["rss_mb"], 1),
             _num(r["cpu_pct"]), _num(r["driver_cpu_pct"]), _num(r["machine_busy_pct"]),
             _num(r["p50_ms"]), _num(r["p99_ms"]))
            for r in built["rows"]]


WARMUP_HEAD = ("events answered", "seconds", "ev/s", "worker CPU µs/event", "RSS MB")


def _warmup_rows(built: dict[str, Any]) -> list[tuple[str, ...]]:
    return [(f"{r['from']:,}-{r['to']:,}", _num(r["seconds"], 1), _num(r["events_per_s"]),
             _num(r["cpu_us_per_event"]), _num(r["rss_mb"], 1))
            for r in built["warmup"]["rows"]]


def _ceiling_line(built: dict[str, Any]) -> str:
    c = built["ceiling"]
    bursts = "; ".join(
        f"{_num(b['events_per_s'])} ev/s at {_num(b['cpu_us_per_event'])} µs CPU/event "
        f"({b['counted']:,} of {b['events']:,} counted)" for b in c["bursts"])
    line = (f"Backlog maximum on that warm state, bursts of "
            f"{built['options']['ceiling_events']:,} events produced at once, each counted "
            f"from when the producer was done: {bursts}; median "
            f"**{_num(c['backlog_events_per_s'])} events/s**.")
    paced = c["paced"]
    if paced is None:
        return line + " The soak's rate is a fraction of it."
    ratio = (paced["events_per_s"] / c["backlog_events_per_s"]
             if paced["events_per_s"] and c["backlog_events_per_s"] else None)
    used = ("the maximum the soak takes a fraction of" if paced["behind"] >= paced["fed"]
            else "not a maximum: the worker kept up with the feed, so the soak takes a "
                 "fraction of the backlog maximum")
    return line + (
        f" Under the soak's conditions (its paced feed at {_num(paced['fed'])} ev/s for "
        f"{paced['seconds']:g} s, its prediction reader running, the broker serving both): "
        f"the worker answered **{_num(paced['events_per_s'])} events/s** "
        f"({_num(None if ratio is None else ratio * 100)}% of the backlog maximum) at "
        f"{_num(paced['cpu_us_per_event'])} µs CPU/event, {paced['behind']:,} events behind "
        f"when the feed stopped: {used}.")


def _intro(built: dict[str, Any]) -> list[str]:
    m, o, w, warm = built["machine"], built["options"], built["windows"], built["warmup"]
    rows = warm["rows"]
    cold_warm = ""
    if rows:
        first, last = rows[0], rows[-1]
        cold_warm = (f" The first tenth (cold) ran at {_num(first['events_per_s'])} ev/s and "
                     f"{_num(first['cpu_us_per_event'])} µs of worker CPU per event, the last "
                     f"(warm) at {_num(last['events_per_s'])} ev/s and "
                     f"{_num(last['cpu_us_per_event'])} µs; RSS {_num(first['rss_mb'], 1)} -> "
                     f"{_num(last['rss_mb'], 1)} MB. From event {warm['steady_from']:,} on: "
                     f"{_num(warm['tail_events_per_s'])} ev/s at "
                     f"{_num(warm['tail_cpu_us_per_event'])} µs.")
    return [
        f"# streamlearn soak, {built['date']}",
        "",
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, load average at start "
        f"{m['load_avg_at_start']}, at the end {built['load_avg_at_end']}. "
        "Versions: " + ", ".join(f"{k} {v}" for k, v in built["versions"].items()) + ".",
        "",
        "Worker: `benchmarks/pipelines/fraud.py` (7 per-card windowed features, then a "
        "logistic regression), drift detection on, one partition, one process from the "
        "warm-up to the end; events of `streamlearn.datasets.fraud.generate` (seed 42, 2,000 "
        "cards), keyed by card, one stream across the phases.",
        "",
        f"Warm-up: a backlog of {warm['events']:,} events (a full day and a minute of event "
        f"time, the longest window plus the lateness, from event {warm['steady_from']:,} on, "
        f"plus {o['warmup_margin']:.0%}): every card seen, its windows full, the state at "
        f"its steady size. Answered in {_num(warm['seconds'])} s.{cold_warm}",
        "",
        *_table(WARMUP_HEAD, _warmup_rows(built)),
        "",
        _ceiling_line(built),
        "",
        f"Soak at {o['fraction']:g} of it, **{_num(built['rate'])} events/s** for "
        f"{o['seconds'] / 60:g} min (sent {built['sent']:,}, {_num(built['sent_per_s'])}/s); "
        f"every prediction in {_num(built['drain_s'], 1)} s after the last send. The "
        f"stream's drift (bursts to card testing) at {_clock(built['drift_at_s'])}.",
        f"Samples every {o['step_s']:g} s. Lag: the input's end offset minus the group's "
        "committed offset (the worker commits about once a second). Latency: the "
        "prediction's LogAppendTime minus its event's CreateTime (its send time), whole ms, "
        "by send time. RSS: the worker's VmRSS. Machine busy: CPU time of all CPUs (200% "
        "is two CPUs) spent neither idle nor in niced processes, which give way to the soak's.",
        f"Windows: lag trend from {w['warmup_s']:g} s; RSS {w['rss_base'][0]:g}-"
        f"{w['rss_base'][1]:g} s against the last {w['last_s']:g} s; p99 "
        f"{w['p99_base'][0]:g}-{w['p99_base'][1]:g} s against the last {w['p99_last_s']:g} s.",
        "",
    ]


def _saturation_line(built: dict[str, Any]) -> str:
    share = built["saturated"]
    return (f"The machine's CPUs were all busy (>= {SATURATED:.0%}, niced processes left "
            f"out) in "
            f"{_num(None if share is None else share * 100)}% of the sample periods: in those, "
            "a worker below 100% of a core is short of CPU, not of capacity.")


def markdown(built: dict[str, Any], png_name: str) -> str:
    lines = [
        *_intro(built),
        f"## Pass criteria: {'all met' if built['passed'] else '**not all met**'}",
        "",
        *_table(CRITERIA_HEAD, _criteria_rows(built)),
        "",
        _saturation_line(built),
        "",
        "## Over time (min:s from the first send)",
        "",
        *_table(ROW_HEAD, _over_time_rows(built)),
        "",
        f"![lag, RSS and p99 over time]({png_name})",
    ]
    return "\n".join(lines) + "\n"


def plot(built: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    o = built["options"]
    w, minutes = built["windows"], [s["t"] / 60 for s in built["samples"]]
    fig = Figure(figsize=(10, 10), dpi=100, layout="constrained")
    lag, rss, p99, warm = fig.subplots(4, 1, height_ratios=(1, 1, 1, 0.8))
    rss.sharex(lag)
    p99.sharex(lag)
    lag.plot(minutes, [s["lag"] for s in built["samples"]], lw=0.8)
    lag.axhline(built["criteria"]["lag"]["bound_events"], color="tab:red", ls="--", lw=0.8,
                label="bound")
    lag.set_ylabel("consumer lag (events)")
    lag.legend(loc="upper right")
    rss.plot(minutes, [s["rss_mb"] for s in built["samples"]], lw=0.8, color="tab:green")
    rss.axvspan(w["rss_base"][0] / 60, w["rss_base"][1] / 60, alpha=0.15, color="gray")
    rss.axvspan((o["seconds"] - w["last_s"]) / 60, o["seconds"] / 60, alpha=0.15, color="gray")
    rss.set_ylabel("worker RSS (MiB)")
    windows = built["latency_windows"]
    t = [x["t"] / 60 for x in windows]
    p99.plot(t, [x["p99_ms"] for x in windows], lw=0.8, color="tab:orange", label="p99")
    p99.plot(t, [x["p50_ms"] for x in windows], lw=0.6, color="tab:blue", label="p50")
    p99.axvspan(w["p99_base"][0] / 60, w["p99_base"][1] / 60, alpha=0.15, color="gray")
    p99.axvspan((o["seconds"] - w["p99_last_s"]) / 60, o["seconds"] / 60, alpha=0.15,
                color="gray")
    p99.set_ylabel(f"latency per {o['step_s']:g} s (ms)")
    p99.set_xlabel("soak: minutes from the first paced send (shaded: the windows the "
                   "criteria compare)")
    p99.legend(loc="upper right")
    rows = built["warmup"]["rows"]
    ends = [r["to"] / 1000 for r in rows]
    edges = [rows[0]["from"] / 1000, *ends] if rows else []
    warm.stairs([r["cpu_us_per_event"] for r in rows], edges, color="tab:purple",
                label="worker CPU µs/event")
    warm.set_ylabel("µs CPU / event")
    warm.set_ylim(bottom=0)
    warm.axvline(built["warmup"]["steady_from"] / 1000, color="gray", ls="--", lw=0.8,
                 label="a full day of event time")
    warm.set_xlabel("warm-up: thousands of backlog events answered")
    ev = warm.twinx()
    ev.stairs([r["rss_mb"] for r in rows], edges, color="tab:green", lw=0.8,
              label="RSS (MiB)", baseline=None)
    ev.set_ylabel("RSS (MiB)")
    handles, labels = warm.get_legend_handles_labels()
    more, more_labels = ev.get_legend_handles_labels()
    warm.legend(handles + more, labels + more_labels, loc="lower right")
    fig.suptitle(f"soak: {built['rate']:,.0f} events/s ({o['fraction']:g} of the warm "
                 f"maximum), {built['date']}")
    fig.savefig(path)


def write(built: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.md", out_dir / f"{stem}.png"]
    paths[0].write_bytes(orjson.dumps(built, option=orjson.OPT_INDENT_2))
    paths[1].write_text(markdown(built, paths[2].name))
    plot(built, paths[2])
    return paths


def print_summary(built: dict[str, Any], console: Console) -> None:
    table = Table(*CRITERIA_HEAD, title=f"soak at {built['rate']:,.0f} events/s")
    for row in _criteria_rows(built):
        table.add_row(*(cell.replace("**", "") for cell in row))
    console.print(table)
    verdict = "[green]passed[/green]" if built["passed"] else "[red]FAILED[/red]"
    console.print(_saturation_line(built))
    console.print(f"soak {verdict}")
