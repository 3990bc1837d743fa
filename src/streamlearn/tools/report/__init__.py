"""``streamlearn report``: how each candidate model scored over time, and what drift did.

``scores`` replays training examples and drift events (plain dicts) into a :class:`Report`;
``render`` draws it as a PNG and an HTML page; ``read`` feeds it from a pipeline's topics.
"""

from streamlearn.tools.report.read import read_report
from streamlearn.tools.report.render import write_html, write_png
from streamlearn.tools.report.scores import (
    WINDOW,
    CandidateSummary,
    DriftEvent,
    Report,
    ReportSummary,
    build_report,
    is_classification,
)

__all__ = [
    "WINDOW", "CandidateSummary", "DriftEvent", "Report", "ReportSummary", "build_report",
    "is_classification", "read_report", "write_html", "write_png",
]
