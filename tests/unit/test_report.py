"""The report's figures on hand-made examples, and the PNG and HTML it writes (no Kafka)."""

from __future__ import annotations

import math
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from river import metrics, utils

from streamlearn.errors import StreamlearnError
from streamlearn.models.scoring import Scoring
from streamlearn.tools import report as report_module
from streamlearn.tools.report import Report, build_report, read_report, write_html, write_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def example(i: int, label: Any, champion: str = "a", **predictions: Any) -> dict[str, Any]:
    """A training record: ``predictions`` maps a candidate to its prediction (None: made
    none)."""
    return {"event_id": f"e{i}", "key": f"k{i}", "x": {"n": i}, "label": label,
            "label_time": 1000 * i, "champion": champion,
            "predictions": {name: {"prediction": p, "proba": None, "model_version": i,
                                   "instance": f"{name}#0"} for name, p in predictions.items()}}


def renamed(record: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``record`` with candidate ``old`` named ``new`` (a name no keyword can spell)."""
    record["predictions"][new] = record["predictions"].pop(old)
    return record


def figures(report: Report) -> dict[str, tuple[int, float | None, float | None]]:
    summary = report.summary()
    return {c.name: (c.scored, c.overall, c.rolling)
            for c in (*summary.candidates, summary.served)}


def test_accuracy_is_hits_over_examples_scored_exactly():
    hits = [True, False, True, True, False, False, True]
    examples = [example(i, True, a=hit) for i, hit in enumerate(hits)]
    scored, overall, _ = figures(build_report("p", examples, []))["a"]
    assert scored == 7
    assert overall == 4 / 7


def test_rolling_accuracy_covers_exactly_the_last_window_examples():
    hits = [True, True, False, False, False]
    examples = [example(i, "spam", a="spam" if hit else "ham") for i, hit in enumerate(hits)]
    assert figures(build_report("p", examples[:4], [], window=4))["a"][2] == 2 / 4
    # The fifth example pushes the first hit out of the window.
    assert figures(build_report("p", examples, [], window=4))["a"][2] == 1 / 4


def test_a_candidate_is_scored_only_where_it_predicted():
    examples = [
        example(0, True, a=True, b=True),
        example(1, True, a=False),              # b absent
        example(2, False, a=False, b=None),     # b made no prediction
        example(3, False, a=True, b=False),
    ]
    got = figures(build_report("p", examples, []))
    assert got["a"] == (4, 2 / 4, 2 / 4)
    assert got["b"] == (2, 1.0, 1.0)
    assert build_report("p", examples, []).summary().examples == 4


def test_served_follows_whichever_candidate_was_champion():
    examples = [example(0, True, "a", a=True, b=False), example(1, True, "b", a=True, b=False),
                example(2, True, "b", a=True, b=False), example(3, True, "gone", a=True)]
    assert figures(build_report("p", examples, []))["served"] == (3, 1 / 3, 1 / 3)


def test_regression_is_scored_by_mean_absolute_error():
    examples = [example(0, 10, a=12.5), example(1, 2.0, a=1.0), example(2, -1, a=-1),
                example(3, 4.0, a=True), example(4, 4.0, a="4")]  # not numbers: not scored
    built = build_report("p", examples, [], window=2)
    assert built.summary().metrics == ("mae", "rmse")
    assert figures(built)["a"] == (3, (2.5 + 1.0 + 0.0) / 3, (1.0 + 0.0) / 2)


def test_regression_figures_are_rivers_mae_and_rmse_as_the_worker_keeps_them():
    rng = random.Random(3)
    pairs = [(rng.gauss(0, 10), rng.gauss(0, 10)) for _ in range(3000)]
    examples = [example(i, y, a=y_hat) for i, (y, y_hat) in enumerate(pairs)]
    summary = build_report("p", examples, []).summary()
    mae, rmse = metrics.MAE(), metrics.RMSE()
    rolling = utils.Rolling(metrics.MAE, window_size=1000)
    for y, y_hat in pairs:
        mae.update(y, y_hat)
        rmse.update(y, y_hat)
        rolling.update(y, y_hat)
    [a] = summary.candidates
    assert a.metrics == {"mae": [mae.get(), rolling.get()], "rmse": [rmse.get(), a.metrics[
        "rmse"][1]]}


def test_duplicate_and_unreadable_records_are_skipped_like_the_learner_skips_them():
    first = example(0, True, a=True)
    records = [first, "not an object", dict(first), {**example(1, None, a=True)},
               example(2, True, a=False)]
    built = build_report("p", records, [None, 3])
    summary = built.summary()
    assert (summary.examples, summary.duplicates, summary.skipped) == (2, 1, 4)
    assert figures(built)["a"] == (2, 1 / 2, 1 / 2)


def test_an_id_is_forgotten_after_keep_ms_of_label_time():
    again = example(0, True, a=True)
    records = [again, example(1, True, a=True), {**example(5, True, a=True)}, dict(again)]
    assert build_report("p", records, [], keep_ms=2000).summary().duplicates == 0
    assert build_report("p", records, [], keep_ms=10_000).summary().duplicates == 1


DRIFT = [
    {"model": "m", "kind": "concept", "detector": "adwin", "level": "drift",
     "statistic": 0.2, "at_example": 2, "at_time": 5, "action": "alert"},
    {"model": "m", "kind": "concept", "detector": "adwin", "level": "warning",
     "statistic": 0.1, "at_example": 3, "at_time": 6, "action": "alert"},
    {"model": "m", "kind": "concept", "at_example": 3, "action": "reset", "from": "a#0",
     "to": "a#1", "reason": "drift"},
    {"model": "m", "kind": "concept", "at_example": 4, "action": "promote", "from": "a#1",
     "to": "b#0", "reason": "b leads"},
    {"model": "m", "kind": "data", "detector": "adwin", "feature": "n", "at_example": 3,
     "at_offset": 17, "action": "alert"},
]


def test_actions_are_counted_by_kind_and_data_events_apart():
    examples = [example(i, True, a=True) for i in range(5)]
    summary = build_report("p", examples, DRIFT).summary()
    assert summary.actions == {"alert": 2, "reset": 1, "promote": 1}
    assert summary.data_events == 1


def test_lines_are_sampled_but_end_on_the_exact_final_figures():
    examples = [example(i, True, a=i % 3 == 0) for i in range(10_001)]
    built = Report("p", window=100, max_points=50)
    for record in examples:
        built.add_example(record)
    xs, ys = built.line(built.candidates["a"])
    assert len(xs) <= 52
    assert xs[-1] == 10_001
    assert ys[-1] == figures(built)["a"][2] == 33 / 100


def test_a_candidate_absent_for_a_while_leaves_a_gap_in_its_line():
    built = Report("p", window=10, max_points=40)
    for i in range(1, 1001):
        record = example(i, True, a=True, b=True)
        if 300 < i <= 600:
            del record["predictions"]["b"]
        built.add_example(record)
    a_xs, a_ys = built.line(built.candidates["a"])
    b_xs, b_ys = built.line(built.candidates["b"])
    assert not any(math.isnan(y) for y in a_ys) and a_xs[-1] == 1000
    gaps = [x for x, y in zip(b_xs, b_ys, strict=True) if math.isnan(y)]
    assert len(gaps) == 1 and 300 <= gaps[0] <= 640


def test_png_is_a_png(tmp_path: Path):
    # "$" starts matplotlib's mathtext, a leading "_" hides a legend entry: drawn as text.
    examples = [renamed(example(i, i % 2 == 0, a=True, b=False), "b", "_$\\bad$")
                for i in range(300)]
    path = write_png(build_report("p", examples, DRIFT), tmp_path / "r.png")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000


def test_data_events_are_listed_but_not_drawn(tmp_path: Path):
    examples = [example(i, i % 2 == 0, a=True) for i in range(50)]
    data_event = {"model": "m", "kind": "data", "at_example": 25, "action": "alert",
                  "reason": "feature n moved"}
    concept = {**data_event, "kind": "concept"}
    shots = [write_png(build_report("p", examples, events), tmp_path / f"{i}.png").read_bytes()
             for i, events in enumerate([[], [data_event], [concept]])]
    assert shots[0] == shots[1]
    assert shots[0] != shots[2]
    page = write_html(build_report("p", examples, [data_event]), tmp_path / "r.html",
                      tmp_path / "1.png").read_text()
    assert "<td>data</td>" in page
    assert "feature n moved" in page


def test_html_escapes_every_record_string(tmp_path: Path):
    hostile = '<script>alert("x")</script>'
    examples = [renamed(example(i, True, a=True), "a", "<b>a</b>") for i in range(3)]
    events = [{**DRIFT[3], "reason": hostile, "model": "m\"><img src=x onerror=alert(1)>",
               "to": "<i>b</i>"}]
    built = build_report('p"<x>', examples, events)
    png = write_png(built, tmp_path / "r.png")
    page = write_html(built, tmp_path / "r.html", png).read_text()
    assert "<script" not in page.lower()
    assert "<img src=x" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;a&lt;/b&gt;" in page
    assert page.count("<img ") == 1


def test_html_embeds_the_chart_and_lists_candidates(tmp_path: Path):
    examples = [example(i, True, a=True, b=i < 2) for i in range(4)]
    built = build_report("fraud", examples, DRIFT)
    png = write_png(built, tmp_path / "r.png")
    page = write_html(built, tmp_path / "r.html", png).read_text()
    assert 'src="data:image/png;base64,iVBORw0KGgo' in page  # base64 of the PNG magic
    assert "<tr><td>b</td><td class=n>4</td><td class=n>0.5000</td>" in page
    assert page.count("<tr><td class=n>") == len(DRIFT)


def test_the_default_window_is_the_learners():
    from streamlearn.models.scoring import ROLLING_WINDOW

    assert report_module.WINDOW == ROLLING_WINDOW


SPEC: Any = SimpleNamespace(name="fraud", training_topic="fraud.training",
                       drift_topic="fraud.drift", labels_topic="fraud.labels",
                       served_topic="fraud.served", label_field="is_fraud",
                       label_ttl_ms=60_000.0, global_learner=True,
                       scoring=Scoring.of(["roc_auc", "accuracy"]))


def fake_records(topics: dict[str, list[bytes | None]]):
    def records(config: dict[str, Any], topic: str):
        return ((None, value) for value in topics.get(topic, []))
    return records


def test_read_report_skips_values_that_are_not_json_objects(monkeypatch: pytest.MonkeyPatch):
    from streamlearn.kafka import snapshots

    good = b'{"event_id":"e1","label":true,"champion":"a","predictions":{"a":{"prediction":true}}}'
    monkeypatch.setattr(snapshots, "records", fake_records({
        "fraud.training": [good, b"{not json", b"[1]", None],
        "fraud.drift": [b'{"kind":"concept","action":"alert","at_example":1}', b"\xff"],
    }))
    told: list[int] = []
    built = read_report(SPEC, {}, progress=told.append)
    summary = built.summary()
    assert (summary.examples, summary.skipped, summary.actions) == (1, 4, {"alert": 1})
    assert sum(told) == 6


def test_read_report_without_examples_says_where_they_come_from(
        monkeypatch: pytest.MonkeyPatch):
    from streamlearn.kafka import snapshots

    monkeypatch.setattr(snapshots, "records", fake_records({}))
    with pytest.raises(StreamlearnError) as raised:
        read_report(SPEC, {})
    message = str(raised.value)
    assert "\n" not in message
    assert "no training examples on fraud.training" in message and "fraud.labels" in message
    with pytest.raises(StreamlearnError, match=r"no served record with a label on fraud\.served"):
        read_report(SimpleNamespace(**{**vars(SPEC), "global_learner": False}), {})


def test_a_per_partition_pipeline_is_reported_from_its_served_records(
        monkeypatch: pytest.MonkeyPatch):
    """One line per partition's model, each scored in its partition's order with the
    pipeline's metrics: the figures the worker exports for it."""
    from streamlearn.kafka import snapshots

    rng = random.Random(5)
    served, truth = [], {0: [], 1: []}
    for i in range(400):
        partition, p = i % 2, rng.random()
        label = rng.random() < p
        truth[partition].append((label, p))
        served.append(orjson.dumps({
            "event_id": f"e{i}", "label": label, "champion": "LogReg", "src": [partition, i],
            "m": i, "predictions": {"LogReg": {"prediction": p > 0.5,
                                               "proba": {"true": p, "false": 1 - p}}}}))
    served.append(served[0])  # a replayed copy: skipped
    monkeypatch.setattr(snapshots, "records", fake_records({"fraud.served": served}))
    built = read_report(SimpleNamespace(**{**vars(SPEC), "global_learner": False}), {})
    summary = built.summary()
    assert built.per_partition and summary.examples == 400
    for line in summary.candidates:
        roc, acc = metrics.ROCAUC(), metrics.Accuracy()
        for label, p in truth[int(line.name.split()[-1])]:
            roc.update(label, {True: p, False: 1 - p})
            acc.update(label, p > 0.5)
        assert (line.scored, line.metrics["roc_auc"][0], line.metrics["accuracy"][0]) == (
            200, roc.get(), acc.get())
