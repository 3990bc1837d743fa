"""The report as a chart (PNG) and a self-contained HTML page."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamlearn.tools.report.scores import DriftEvent, Report

__all__ = ["write_html", "write_png"]

SERVING_CHANGES = frozenset({"promote", "switch", "rollback"})
"""Actions that change what is served: drawn solid; other actions dashed."""
MAX_MARK_LABELS = 25
"""Actions labelled on the chart at most: past that the labels would hide the lines."""
MAX_TABLE_ROWS = 1000
GLOBAL_NOTE = """These score each prediction as served, made by the snapshot the predictors
had then; <code>streamlearn models list</code> shows the learner's own scores, of its newest
model on each example, usually higher."""
PER_PARTITION_NOTE = """Each partition's model learns its own events, test-then-train:
its line is the metric the worker exports for it; "served" is every partition's
predictions together, in event-time order."""


def _plain(text: str) -> str:
    """``text`` as matplotlib shows it literally (``$`` would start mathtext, which fails
    to draw on bad input; a leading ``_`` would hide a legend entry)."""
    text = text.replace("$", r"\$")
    return f" {text}" if text.startswith("_") else text


def write_png(report: Report, path: str | Path) -> Path:
    """The chart: each candidate's rolling metric, the served one thicker, drift actions as
    vertical lines and raw alerts as ticks along the bottom."""
    # The Agg canvas directly, not pyplot: no process-wide backend switch, no figure to close.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Served underneath, wide and dark: the champion's own line stays visible on top of it.
    ax.plot(*report.line(report.served), color="black", linewidth=4.5, alpha=0.4, zorder=1,
            label="served (champion)")
    for name, track in report.candidates.items():
        ax.plot(*report.line(track), linewidth=1.2, zorder=2, label=_plain(name))
    _mark_events(ax, report)
    if report.served is None and not report.candidates:
        ax.text(0.5, 0.5, "no scored examples", transform=ax.transAxes, ha="center")
    ax.set_xlim(0, max(report.examples, 1))
    ax.set_xlabel("example" if report.per_partition else "training example")
    ax.set_ylabel(f"rolling {report.metric} as served (window {report.window})")
    whose = "each partition's model" if report.per_partition else "each candidate"
    ax.set_title(_plain(f"{report.pipeline}: {report.metric} of {whose}"))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return Path(path)


def _mark_events(ax: Any, report: Report) -> None:
    events = [e for e in report.events
              if e.on_training_axis and 1 <= (e.at_example or 0) <= report.examples]
    at_x = ax.get_xaxis_transform()  # x in examples, y in axes fractions
    alerts = [e.at_example for e in events if e.action == "alert"]
    if alerts:
        ax.plot(alerts, [0.015] * len(alerts), linestyle="none", marker="|", markersize=9,
                color="black", transform=at_x, label=f"drift alert ({len(alerts)})")
    actions = [e for e in events if e.action != "alert"]
    legend = {True: "promote / switch / rollback", False: "reset / challenge / retire"}
    for i, event in enumerate(actions):
        serving = event.action in SERVING_CHANGES
        ax.axvline(event.at_example, color="tab:red" if serving else "grey",
                   linestyle="-" if serving else "--", linewidth=1.0, alpha=0.8,
                   label=legend.pop(serving, "_nolegend_"))
        if i < MAX_MARK_LABELS:
            target = f" {event.target}" if event.target else ""
            ax.text(event.at_example, 0.97, _plain(f"{event.action}{target} "),
                    transform=at_x, rotation=90, ha="right", va="top", fontsize=7,
                    color="dimgray")


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.served { font-weight: bold; } .note { color: #555; }
"""


def _figure(value: float | None, classification: bool) -> str:
    """A score as ``top`` and ``models list`` show it: 4 decimals for a classifier's (all
    between 0 and 1), 4 significant digits for an error in the label's units."""
    if value is None:
        return ""
    return f"{value:.4f}" if classification else f"{value:.4g}"


def _table(table_id: str, head: list[str], rows: Iterable[tuple[str, list[str]]],
           numeric: set[int]) -> str:
    """A table of escaped texts, rows given as (class, cells); ``numeric`` columns align
    right."""
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join(
        (f'<tr class="{css}">' if css else "<tr>")
        + "".join(f'<td{" class=n" if i in numeric else ""}>{html.escape(text)}</td>'
                  for i, text in enumerate(cells)) + "</tr>"
        for css, cells in rows)
    return f'<table id="{table_id}"><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>'


def _event_cells(e: DriftEvent) -> list[str]:
    return ["" if e.at_example is None else f"{e.at_example:,}", e.model, e.kind,
            f"{e.detector} / {e.level}" if e.level else e.detector, e.action,
            f"{e.source} → {e.target}" if e.source or e.target else "", e.reason]


def write_html(report: Report, path: str | Path, png_path: str | Path) -> Path:
    """A self-contained page: the chart (``png_path``, embedded), the candidates' figures
    and the drift events. Record contents are escaped, and the page's policy forbids
    scripts, so a hostile reason or name shows as text."""
    s = report.summary()
    name = html.escape(report.pipeline)
    image = base64.b64encode(Path(png_path).read_bytes()).decode("ascii")
    alt = html.escape(f"Rolling {s.metric} of each candidate of {report.pipeline} over the "
                      "training examples, with drift actions marked")
    head = ["partition" if report.per_partition else "candidate", "examples scored",
            *(f"{kind}{m}{where}" for m in s.metrics
              for kind, where in (("", " overall"), ("rolling ", f" (last {s.window})")))]
    candidates = _table(
        "candidates", head,
        [("served" if c is s.served else "", [c.name, f"{c.scored:,}", *(
            _figure(v, report.classification is not False)
            for m in s.metrics for v in c.metrics.get(m, (None, None)))])
         for c in (*s.candidates, s.served)], set(range(1, len(head))))
    events = _table("drift", ["at example", "model", "kind", "detector / level", "action",
                              "from → to", "reason"],
                    [("", _event_cells(e)) for e in report.events[:MAX_TABLE_ROWS]], {0})
    more = len(report.events) - MAX_TABLE_ROWS
    if more > 0:
        events += f'<p class="note">{more:,} more events not listed.</p>'
    counts = ", ".join(f"{a} {n:,}" for a, n in s.actions.items()) or "none"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>streamlearn report: {name}</title><style>{STYLE}</style></head>
<body><h1>streamlearn report: {name}</h1>
<p>{s.examples:,} {"served examples with their label" if report.per_partition
                    else "training examples"}, scored by {html.escape(", ".join(s.metrics))}
({s.duplicates:,} duplicates and {s.skipped:,} unreadable or unlabelled records skipped).
{PER_PARTITION_NOTE if report.per_partition else GLOBAL_NOTE}</p>
<img src="data:image/png;base64,{image}" alt="{alt}">
<h2>Candidates</h2>{candidates}
<h2>Drift events</h2><p>Actions on the chart: {html.escape(counts)}; data drift events:
{s.data_events:,} (positioned by input offset, not by training example: listed, not
drawn).</p>{events}
</body></html>
"""
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)
