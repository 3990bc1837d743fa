"""The soak run's figures over time, its pass criteria, and its report (JSON, markdown, PNG).

Criteria, with the 30-minute windows (``Windows.scaled`` keeps their proportions for other
durations):

- **lag bounded**: the median lag of the last minute is at most ``Limits.lag_s`` seconds of
  events at the target rate, and the least-squares trend of the lag after warm-up (2 min)
  adds at most as much over that span. The worker commits about once a second, so a
  healthy one sits between 0 and a couple of seconds of events.
- **RSS**: the median RSS of the last minute is less than ``Limits.rss_growth`` (10%)
  above the median of minutes 2-3.
- **p99**: the p99 latency of events sent in the last 5 minutes is at most
  ``Limits.p99_ratio`` (1.5x) the p99 of minutes 5-10 (a p99 below 1 ms counts as 1 ms,
  as in the harness).
- **answers**: every event answered exactly once, and the worker never exited.

>>> w = Windows.scaled(60.0)
>>> w.warmup_s, w.rss_base, w.last_s, w.p99_base, w.p99_last_s
(4.0, (4.0, 6.0), 2.0, (10.0, 20.0), 10.0)
>>> from benchmarks.stats import percentile
>>> values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
>>> hist_percentile(Counter(values), 90) == percentile(values, 90), hist_percentile({}, 99)
(True, None)
"""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.table import Table

from benchmarks.report import _num, _table
from benchmarks.runs import RunResult
from benchmarks.soak_probes import PredictionReader, Sample
from benchmarks.stats import median

if TYPE_CHECKING:
    from benchmarks.soak import SoakOptions, SoakRun

__all__ = ["Limits", "Windows", "build", "hist_percentile", "print_summary", "progress_line",
           "write"]

FULL_S = 1800.0
ROWS = 30
"""Rows of the over-time table (a minute each in a 30-minute run)."""


@dataclass(frozen=True)
class Windows:
    """Where the criteria look, in seconds from the feed's start."""

    warmup_s: float
    """The lag trend starts here."""
    rss_base: tuple[float, float]
    last_s: float
    """RSS and lag: the run's last ``last_s`` seconds."""
    p99_base: tuple[float, float]
    p99_last_s: float

    @classmethod
    def scaled(cls, seconds: float) -> Windows:
        """The 30-minute windows (warm-up 2 min, RSS minute 2-3 against the last, p99
        minutes 5-10 against the last 5), in proportion to ``seconds``."""
        def at(full_s: float) -> float:
            return full_s * seconds / FULL_S

        return cls(at(120), (at(120), at(180)), at(60), (at(300), at(600)), at(300))

    def after_fill(self, fill_s: float | None, seconds: float) -> Windows:
        """Warm-up and the RSS baseline moved to ``fill_s`` when that is later: until the
        feature windows are full, state grows by design. Unchanged if the baseline would
        then reach into the last window (the run is too short for it).

        >>> Windows.scaled(360).after_fill(31.0, 360).rss_base
        (31.0, 43.0)
        """
        if fill_s is None or fill_s <= self.warmup_s:
            return self
        base = (fill_s, fill_s + self.rss_base[1] - self.rss_base[0])
        if base[1] > seconds - self.last_s:
            return self
        return replace(self, warmup_s=fill_s, rss_base=base)


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


def build(run: SoakRun, ceiling: Sequence[RunResult], environment: dict[str, Any],
          opts: SoakOptions) -> dict[str, Any]:
    fill_s = None if run.feed.filled is None else float(math.ceil(run.feed.filled / run.rate))
    w = opts.windows.after_fill(fill_s, opts.seconds)
    criteria = {"lag": lag_criterion(run, opts, w), "rss": rss_criterion(run, opts, w),
                "p99": p99_criterion(run, opts, w), "answers": answers_criterion(run, opts)}
    last = run.samples[-1] if run.samples else None
    return {
        **environment,
        "options": {"seconds": opts.seconds, "fraction": opts.fraction, "step_s": opts.step_s,
                    "windows_asked": asdict(opts.windows), "limits": asdict(opts.limits),
                    "ceiling_events": opts.ceiling_events, "ceiling_reps": opts.ceiling_reps,
                    "ceiling_warmup": opts.ceiling_warmup},
        "ceiling": {"events_per_s": run.rate / opts.fraction,
                    "runs": [r.to_dict() for r in ceiling]},
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "rate": run.rate,
        "windows_full_at_s": fill_s,
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


def _ceiling_line(built: dict[str, Any]) -> str:
    o, c = built["options"], built["ceiling"]
    runs = "; ".join(
        f"{_num(r['events_per_s'])} over the whole backlog"
        + (f", {_num(r['extra']['steady_events_per_s'])} from event "
           f"{r['extra']['steady_from']:,} on" if r["extra"].get("steady_events_per_s") else "")
        + (" (discarded)" if r["warmup"] else "")
        for r in c["runs"])
    return (f"Maximum rate, A on a backlog of {o['ceiling_events']:,} events as the harness "
            f"measures it: {runs} events/s. Maximum: **{_num(c['events_per_s'])}** (median; "
            "the rate from the event on which the feature windows are full, where the backlog "
            "reaches it: before, each event finds less state and costs less).")


def _intro(built: dict[str, Any]) -> list[str]:
    m, o, w = built["machine"], built["options"], built["windows"]
    full = built["windows_full_at_s"]
    return [
        f"# streamlearn soak, {built['date']}",
        "",
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, load average at start "
        f"{m['load_avg_at_start']}, at the end {built['load_avg_at_end']}. "
        "Versions: " + ", ".join(f"{k} {v}" for k, v in built["versions"].items()) + ".",
        "",
        "Worker: `benchmarks/pipelines/fraud.py` (7 per-card windowed features, then a "
        "logistic regression), drift detection on, one partition, a fresh model; events of "
        "`streamlearn.datasets.fraud.generate` (seed 42), keyed by card.",
        _ceiling_line(built),
        f"Soak at {o['fraction']:g} of it, **{_num(built['rate'])} events/s** for "
        f"{o['seconds'] / 60:g} min (sent {built['sent']:,}, {_num(built['sent_per_s'])}/s); "
        f"every prediction in {_num(built['drain_s'], 1)} s after the last send. Feature "
        f"windows full from {_num(full, 1)} s on.",
        f"Samples every {o['step_s']:g} s. Lag: the input's end offset minus the group's "
        "committed offset (the worker commits about once a second). Latency: the "
        "prediction's LogAppendTime minus its event's CreateTime (its send time), whole ms, "
        "by send time. RSS: the worker's VmRSS.",
        f"Windows: warm-up {w['warmup_s']:g} s; RSS {w['rss_base'][0]:g}-{w['rss_base'][1]:g} "
        f"s against the last {w['last_s']:g} s; p99 {w['p99_base'][0]:g}-{w['p99_base'][1]:g} "
        f"s against the last {w['p99_last_s']:g} s (warm-up and RSS baseline no earlier "
        "than the full feature windows).",
        "",
    ]


def markdown(built: dict[str, Any], png_name: str) -> str:
    lines = [
        *_intro(built),
        f"## Pass criteria: {'all met' if built['passed'] else '**not all met**'}",
        "",
        *_table(CRITERIA_HEAD, _criteria_rows(built)),
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
    fig = Figure(figsize=(10, 8), dpi=100, layout="constrained")
    lag, rss, p99 = fig.subplots(3, 1, sharex=True)
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
    p99.set_xlabel("minutes from the first send (shaded: the windows the criteria compare)")
    p99.legend(loc="upper right")
    fig.suptitle(f"soak: {built['rate']:,.0f} events/s ({o['fraction']:g} of the maximum), "
                 f"{built['date']}")
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
    console.print(f"soak {verdict}")
