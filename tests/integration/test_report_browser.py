"""The report page as a user opens it: a real headless browser (Debian's ``chromium``, as in
``test_dashboards.py``) on the HTML file of a synthetic report, no Kafka needed.

The page carries no script, so what the browser made of it is read from outside: its DOM
(``--dump-dom``: the tables, and that a hostile reason stayed text) and a screenshot (the
embedded chart decoded and drew: pixels of the candidates' line colours).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from matplotlib import image

from streamlearn.tools.report import Report, build_report, write_html, write_png

HOSTILE = '<script>document.title="pwned"</script>'
TAB_BLUE = (31, 119, 180)  # matplotlib's first line colour: the first candidate's line


def synthetic_report(n: int = 6000) -> Report:
    """Two candidates, a drift that sinks the champion, a switch, alerts and a data event."""
    rng = random.Random(7)
    examples = []
    for i in range(1, n + 1):
        label = rng.random() < 0.5
        good = {"tree": 0.9 if i < 3000 else 0.6, "lr": 0.8}
        examples.append({
            "event_id": f"e{i}", "label": label, "label_time": i,
            "champion": "tree" if i <= 4000 else "lr",
            "predictions": {name: {"prediction": label if rng.random() < p else not label,
                                   "proba": None, "model_version": i, "instance": f"{name}#0"}
                            for name, p in good.items()},
        })
    drift = [{"model": "fraud", "kind": "concept", "detector": "adwin", "level": "drift",
              "statistic": 0.3, "at_example": at, "action": "alert"} for at in (3200, 3500)]
    drift += [
        {"model": "fraud", "kind": "concept", "at_example": 4000, "action": "switch",
         "from": "tree#0", "to": "lr#0", "reason": HOSTILE},
        {"model": "fraud", "kind": "data", "detector": "adwin", "feature": "amount",
         "at_example": 12, "action": "alert"},
    ]
    return build_report("fraud", examples, drift)


class _Dom(HTMLParser):
    """Every tag opened, and the cell texts of each table's body rows, by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str | None]] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if tag == "img":
            self.images.append(found)
        elif tag == "table":
            self._table = str(found.get("id"))
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _chromium(tmp: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary, "chromium is not on PATH: run scripts/system-deps.sh (apt-get install chromium)"
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp / 'chromium'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1300,1500", *args, page.as_uri()],
        capture_output=True, text=True, timeout=60,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    tmp = tmp_path_factory.mktemp("report")
    report = synthetic_report()
    write_html(report, tmp / "report.html", write_png(report, tmp / "report.png"))
    return tmp / "report.html", report


def test_the_page_shows_every_candidate_and_drift_event(page: tuple[Path, Report]):
    path, report = page
    dom = _chromium(path.parent, path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    assert "Refused to" not in dom.stderr  # the page's own policy blocked nothing of it
    parsed = _Dom()
    parsed.feed(dom.stdout)
    summary = report.summary()
    rows = parsed.tables["candidates"][1:]  # after the header row
    assert [r[0] for r in rows] == ["tree", "lr", "served"]
    assert rows[2][1:] == [f"{summary.served.scored:,}", f"{summary.served.overall:.4f}",
                           f"{summary.served.rolling:.4f}"]
    events = parsed.tables["drift"][1:]
    assert [(r[0], r[2], r[4]) for r in events] == [
        ("3,200", "concept", "alert"), ("3,500", "concept", "alert"),
        ("4,000", "concept", "switch"), ("12", "data", "alert")]
    assert events[2][5:] == ["tree#0 → lr#0", HOSTILE]  # shown as text ...
    assert "script" not in parsed.tags  # ... never run
    [img] = parsed.images
    assert str(img["src"]).startswith("data:image/png;base64,") and img["alt"]


def test_the_chart_is_drawn_in_the_browser(page: tuple[Path, Report]):
    path, _ = page
    shot_path = path.parent / "screenshot.png"
    shot = _chromium(path.parent, path, f"--screenshot={shot_path}")
    assert shot.returncode == 0, shot.stderr[-3000:]
    pixels: Any = image.imread(shot_path)[..., :3] * 255  # height x width x RGB
    assert (pixels < 250).any(axis=-1).mean() > 0.02  # not a blank page
    # Only the chart has matplotlib's blue: the embedded PNG decoded and was laid out.
    blue = (abs(pixels - TAB_BLUE) < 40).all(axis=-1).sum()
    assert blue > 500
