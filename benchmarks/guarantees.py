"""At-least-once against exactly-once: what the worker's processing guarantee costs.

``python -m benchmarks.guarantees [--smoke] [--rounds 3] [--bootstrap HOST:PORT]``

The full worker (contender A of the main benchmark: ``streamlearn run`` on
``pipelines/<workload>.py``) under ``STREAMLEARN_PROCESSING_GUARANTEE=at_least_once`` (ALO)
and ``exactly_once`` (EOS: outputs and input offsets commit in one Kafka transaction every
``STREAMLEARN_COMMIT_INTERVAL`` seconds), on the main benchmark's ``logreg`` and ``tree``
workloads and with its phases (``phases.throughput_run``, ``phases.latency_run``):

- throughput: both modes read the same pre-produced backlog with a fresh group, in
  interleaved rounds (ALO, EOS, ALO, EOS, ...; the first round discarded); events/s from
  the outputs' LogAppendTime as the main benchmark counts it, and the worker process's CPU
  (user + system, all threads, ``/proc``) per event between its first and last output;
- latency: at a fixed rate below saturation (half of ALO's median events/s), each event's
  CreateTime (its send time) to its receipt by a consumer of the predictions topic that
  reads ``read_committed``, as a downstream reader would: under EOS an output is visible
  only once its transaction commits. p50 and p99; the main benchmark's figure (output
  LogAppendTime - CreateTime, which does not wait for the commit) is kept beside it.

Every run is checked for one output per input as a ``read_committed`` reader sees it, and
EOS runs for transaction markers in their output topic (ALO runs for none): a mode that did
not take effect fails the run. Rule: exactly-once qualifies as the default if on both
workloads its events/s is at least 0.85x ALO's and its read_committed p99 at most ALO's
p99 plus the commit interval. Results: ``benchmarks/results/guarantees.{md,json}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer
from confluent_kafka import TopicPartition as ConfluentPartition
from rich.console import Console

from benchmarks import machine
from benchmarks.contenders import Contender, RunSpec, select
from benchmarks.harness import broker, latency_phase, remove_topics, throughput_phase
from benchmarks.kafka_io import OffsetProbe
from benchmarks.options import FULL, SMOKE, Options
from benchmarks.phases import latency_run, prepare_inputs
from benchmarks.process import ContenderProcess
from benchmarks.runs import Bench, RunFailed, RunResult
from benchmarks.stats import median, percentile, rate_from_timestamps, ratio
from benchmarks.summary import per_contender
from benchmarks.workloads import EVENT_ID_FIELD, WORKLOADS

__all__ = ["CommittedBench", "CommittedReader", "decide", "main", "modes"]

ALO, EOS = "ALO", "EOS"
GUARANTEES = {ALO: "at_least_once", EOS: "exactly_once"}
THROUGHPUT_FLOOR = 0.85
"""EOS events/s must be at least this share of ALO's (on every workload) to qualify."""
WORKLOADS_RUN = ("logreg", "tree")
LATENCY_SECONDS = 10.0
"""Paced seconds per latency run (full size): 50 commit intervals at the default 0.2 s."""
LATENCY_WARMUP_SECONDS = 1.0


def default_commit_interval() -> float:
    from streamlearn.config import Settings

    return Settings().commit_interval


def modes(commit_interval: float) -> list[Contender]:
    """The worker (contender A) under each guarantee, ALO first."""
    worker = select(["A"])[0]
    return [
        dataclasses.replace(worker, key=key, title=f"streamlearn, {guarantee}", env={
            **worker.env,
            "STREAMLEARN_PROCESSING_GUARANTEE": guarantee,
            "STREAMLEARN_COMMIT_INTERVAL": f"{commit_interval:g}",
        })
        for key, guarantee in GUARANTEES.items()
    ]


class CommittedReader(threading.Thread):
    """Reads an output topic from its start as it grows, ``read_committed`` (librdkafka's
    default, set anyway), noting when each record gets here (epoch ms, this process's clock:
    the paced producer's, which stamps each event's CreateTime). Reads as contender C3
    does, ``consume(1, 0.1)`` then what is already fetched, so a batch waits for nothing."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(name=f"committed-reader-{topic}", daemon=True)
        self.bootstrap, self.topic = bootstrap, topic
        self.received: dict[bytes, float] = {}
        """Event id -> when its first output was received."""
        self.count = 0
        """Records received, copies included."""
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": f"{self.topic}.committed-reader",  # assigned, never committed
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        })
        try:
            consumer.assign([ConfluentPartition(self.topic, 0, OFFSET_BEGINNING)])
            while not self.halt.is_set():
                batch = consumer.consume(1, timeout=0.1)
                if batch:
                    batch += consumer.consume(10_000, timeout=0)
                now = time.time() * 1000
                for message in batch:
                    if message.error():
                        raise RuntimeError(f"reading {self.topic}: {message.error()}")
                    event_id = orjson.loads(message.value() or b"{}")[EVENT_ID_FIELD].encode()
                    self.received.setdefault(event_id, now)
                    self.count += 1
        except BaseException as exc:  # the watching loop sees it and fails the run
            self.error = exc
        finally:
            consumer.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


@dataclass
class CommittedBench(Bench):
    """The harness's ``Bench``, with a ``CommittedReader`` on each run's output topic: a
    run's outputs are the records that reader has received (the output topic's end offset
    counts transaction markers too, so under EOS it runs ahead of the outputs)."""

    reader: CommittedReader | None = None
    received: dict[bytes, float] = field(default_factory=dict)
    """The last collected run's receipts (``CommittedReader.received``)."""

    def start(self, contender: Contender, run: RunSpec) -> ContenderProcess:
        self.stop_reader()  # a run that failed before its collect left it running
        proc = super().start(contender, run)  # creates the output topic
        self.reader = CommittedReader(self.bootstrap, run.output_topic)
        self.reader.start()
        return proc

    def outputs(self, topic: str) -> int:
        reader = self.reader
        if reader is None or reader.topic != topic:
            return super().outputs(topic)
        if reader.error is not None:
            raise RunFailed(f"the read_committed reader failed: {reader.error}")
        return reader.count

    def collect(
        self, result: RunResult, run: RunSpec, expected: Collection[bytes]
    ) -> list[tuple[bytes, int]]:
        records = super().collect(result, run, expected)
        self.received = self.stop_reader()
        stamps = (int(ms) for ms in self.received.values())
        result.extra["read_committed_events_per_s"] = rate_from_timestamps(stamps)
        # Offsets that hold no committed output: commit markers (and aborted records).
        markers = self.probe.end(run.output_topic) - len(records)
        result.extra["marker_offsets"] = markers
        transactional = GUARANTEES.get(result.contender) == "exactly_once"
        if transactional and markers <= 0:
            raise RunFailed("no transaction markers in the output: not exactly-once")
        if not transactional and markers:
            raise RunFailed(f"{markers} offsets of the output hold no record: transactions?")
        return records

    def stop_reader(self) -> dict[bytes, float]:
        reader, self.reader = self.reader, None
        if reader is None:
            return {}
        reader.stop()
        return reader.received


def committed_latency_run(
    bench: Bench, contender: Contender, workload: str, sizes: tuple[int, int],
    rate: float, result: RunResult,
) -> None:
    """``phases.latency_run``; then p50/p99 from CreateTime to read_committed receipt (its
    own figures, to the output's LogAppendTime, are kept as ``append_p50_ms``/``_p99``)."""
    assert isinstance(bench, CommittedBench)
    sent = latency_run(bench, contender, workload, sizes, rate, result)
    result.extra["append_p50_ms"], result.extra["append_p99_ms"] = result.p50_ms, result.p99_ms
    latencies = [bench.received[eid] - ms for eid, ms in sent.items() if eid in bench.received]
    if len(latencies) < len(sent):
        raise RunFailed(f"the read_committed reader got {len(latencies)}/{len(sent)} outputs")
    result.p50_ms = percentile(latencies, 50)
    result.p99_ms = percentile(latencies, 99)
    result.extra["measured_events"] = len(sent)


def latency_sizes(opts: Options, rate: float, seconds: float) -> Options:
    """``seconds`` of events at ``rate`` after a second of warm-up (the options' counts at
    least: in smoke mode, ``seconds`` is 0 and they are the sizes)."""
    return opts.with_(
        latency_events=max(opts.latency_events, round(rate * seconds)),
        latency_warmup=max(opts.latency_warmup,
                           round(rate * LATENCY_WARMUP_SECONDS) if seconds else 0),
    )


def run_workload(
    bench: CommittedBench, workload: str, contenders: Sequence[Contender], opts: Options,
    seconds: float, fixed_rate: float | None, console: Console,
) -> list[RunResult]:
    console.rule(f"{workload}: {opts.events:,} events, {opts.reps} rounds + "
                 f"{opts.warmup_reps} warm-up (ALO, EOS, ...)")
    [data] = prepare_inputs(bench, [WORKLOADS[workload]], opts.events)
    results = throughput_phase(bench, [(data, contenders)], opts, console)
    if workload not in opts.latency_workloads:
        return results
    alo = [r.events_per_s for r in results if r.contender == ALO and r.ok and not r.warmup]
    rate = fixed_rate or max(opts.min_latency_rate, (median(alo) or 0.0) / 2)
    paced = latency_sizes(opts, rate, seconds)
    console.rule(f"{workload}: latency at {rate:,.0f} events/s, {paced.latency_events:,} "
                 f"events after {paced.latency_warmup:,}, read_committed")
    return results + latency_phase(bench, contenders, workload, rate, paced, console,
                                   runner=committed_latency_run)


def _extra_median(runs: Sequence[RunResult], key: str, name: str) -> float | None:
    return median(r.extra.get(name) for r in runs if r.contender == key and r.ok
                  and not r.warmup)


def summarize(results: Sequence[RunResult], workloads: Sequence[str]) -> dict[str, Any]:
    """Per workload: medians per mode, ratios of medians EOS/ALO."""
    out: dict[str, Any] = {}
    for workload in workloads:
        mine = [r for r in results if r.workload == workload]
        tp_runs = [r for r in mine if r.phase == "throughput"]
        lat_runs = [r for r in mine if r.phase == "latency"]
        tp, lat = per_contender(tp_runs), per_contender(lat_runs)
        for key in GUARANTEES:
            if key in tp:
                tp[key]["marker_offsets"] = _extra_median(tp_runs, key, "marker_offsets")
                tp[key]["read_committed_events_per_s"] = _extra_median(
                    tp_runs, key, "read_committed_events_per_s")
            if key in lat:
                for name in ("append_p50_ms", "append_p99_ms", "measured_events"):
                    lat[key][name] = _extra_median(lat_runs, key, name)

        def both(table: dict[str, Any], figure: str) -> tuple[Any, Any]:
            return table.get(EOS, {}).get(figure), table.get(ALO, {}).get(figure)

        out[workload] = {
            "throughput": tp,
            "latency": lat,
            "ratios": {
                "events_per_s": ratio(*both(tp, "events_per_s")),
                "cpu_us_per_event": ratio(*both(tp, "cpu_us_per_event")),
                "paced_cpu_us_per_event": ratio(*both(lat, "cpu_us_per_event")),
                "p50_ms": ratio(*both(lat, "p50_ms")),
                "p99_ms": ratio(*both(lat, "p99_ms")),
            },
        }
    return out


def decide(summary: dict[str, Any], commit_interval: float) -> dict[str, Any]:
    """The rule, per workload and overall: ``qualifies`` is None if a figure is missing.

    >>> good = {"ratios": {"events_per_s": 0.9},
    ...         "latency": {"ALO": {"p99_ms": 10.0}, "EOS": {"p99_ms": 150.0}}}
    >>> slow = {**good, "ratios": {"events_per_s": 0.8}}
    >>> decide({"logreg": good, "tree": good}, 0.2)["qualifies"]
    True
    >>> verdict = decide({"logreg": good, "tree": slow}, 0.2)
    >>> verdict["qualifies"], verdict["workloads"]["tree"]["throughput_ok"]
    (False, False)
    """
    rows: dict[str, Any] = {}
    for workload, s in summary.items():
        rate_ratio = s["ratios"]["events_per_s"]
        p99_eos, p99_alo = (s["latency"].get(k, {}).get("p99_ms") for k in (EOS, ALO))
        limit = None if p99_alo is None else p99_alo + commit_interval * 1000
        rows[workload] = {
            "events_per_s_ratio": rate_ratio,
            "throughput_ok": None if rate_ratio is None else rate_ratio >= THROUGHPUT_FLOOR,
            "p99_eos_ms": p99_eos,
            "p99_limit_ms": limit,
            "latency_ok": None if p99_eos is None or limit is None else p99_eos <= limit,
        }
    checks = [row[k] for row in rows.values() for k in ("throughput_ok", "latency_ok")]
    qualifies = False if False in checks else None if None in checks or not rows else True
    return {"rule": f"on every workload: EOS events/s >= {THROUGHPUT_FLOOR}x ALO's, and EOS "
                    f"read_committed p99 <= ALO's p99 + the commit interval "
                    f"({commit_interval * 1000:g} ms)",
            "workloads": rows, "qualifies": qualifies}


def verdict_line(verdict: dict[str, Any]) -> str:
    q = verdict["qualifies"]
    head = ("exactly_once QUALIFIES as the default" if q else
            "exactly_once does NOT qualify as the default" if q is False else
            "no verdict (a figure is missing: see the failures)")
    reasons = []
    for workload, row in verdict["workloads"].items():
        if row["throughput_ok"] is False:
            reasons.append(f"{workload}: events/s {row['events_per_s_ratio']:.2f}x "
                           f"< {THROUGHPUT_FLOOR}x")
        if row["latency_ok"] is False:
            reasons.append(f"{workload}: p99 {row['p99_eos_ms']:.1f} ms > "
                           f"{row['p99_limit_ms']:.1f} ms")
    return head + (f" ({'; '.join(reasons)})" if reasons else "")


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


MODE_COLUMNS = ("mode", "events/s", "CPU µs/event", "marker offsets/run",
                "p50 ms read_committed", "p99 ms read_committed", "p50 ms at append",
                "p99 ms at append", "CPU µs/event paced", "peak RSS MB", "runs ok")
RATIO_COLUMNS = ("workload", "events/s", "CPU µs/event", "CPU µs/event paced", "p50", "p99",
                 "p99 EOS - ALO ms", "rule")


def _mode_rows(s: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key, guarantee in GUARANTEES.items():
        t, la = s["throughput"].get(key, {}), s["latency"].get(key, {})
        ok = " + ".join(f"{x['ok_runs']}/{x['runs']}" for x in (t, la) if x)
        rss = max(filter(None, [t.get("peak_rss_mb"), la.get("peak_rss_mb")]), default=None)
        rows.append([
            f"{key} ({guarantee})", _num(t.get("events_per_s")), _num(t.get("cpu_us_per_event")),
            _num(t.get("marker_offsets")), _num(la.get("p50_ms"), 1), _num(la.get("p99_ms"), 1),
            _num(la.get("append_p50_ms"), 1), _num(la.get("append_p99_ms"), 1),
            _num(la.get("cpu_us_per_event")), _num(rss), ok,
        ])
    return rows


def _ratio_row(workload: str, s: dict[str, Any], verdict: dict[str, Any]) -> list[str]:
    r, row = s["ratios"], verdict["workloads"][workload]
    p99s = [s["latency"].get(k, {}).get("p99_ms") for k in (EOS, ALO)]
    diff = None if None in p99s else p99s[0] - p99s[1]
    met = {True: "met", False: "**not met**", None: "-"}
    rule = (f"events/s {met[row['throughput_ok']]}, p99 {met[row['latency_ok']]}")
    return [workload, _num(r["events_per_s"], 2), _num(r["cpu_us_per_event"], 2),
            _num(r["paced_cpu_us_per_event"], 2), _num(r["p50_ms"], 2), _num(r["p99_ms"], 2),
            _num(diff, 1), rule]


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(row) + " |" for row in rows)]


def markdown(built: dict[str, Any]) -> str:
    m, v, o = built["machine"], built["versions"], built["options"]
    lines = [
        f"# Processing guarantees: at-least-once against exactly-once, {built['date']}",
        "",
        f"Machine: {m['nproc']} CPUs, {m['cpu']}, {m['platform']}, load at start "
        f"{m['load_avg_at_start']}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        "Written by `python -m benchmarks.guarantees` (module docstring and "
        "`benchmarks/README.md`: method). The worker (`streamlearn run`, contender A of the "
        "main benchmark) under STREAMLEARN_PROCESSING_GUARANTEE=at_least_once (ALO) and "
        f"exactly_once (EOS, STREAMLEARN_COMMIT_INTERVAL={o['commit_interval_s']:g} s). "
        f"Throughput: {o['events']:,} pre-produced events per run, medians of {o['reps']} "
        f"interleaved rounds (ALO, EOS) after {o['warmup_reps']} discarded; events/s from "
        "the outputs' LogAppendTime, CPU µs/event of the worker process (user + system, all "
        "threads) between its first and last output. Latency: paced at half of ALO's median "
        "events/s, medians of the rounds' p50 and p99 of CreateTime -> receipt by a "
        "read_committed consumer of the predictions topic ('at append': to the output's "
        "LogAppendTime instead, the main benchmark's figure, which does not wait for the "
        "commit). Marker offsets: output offsets holding no committed record (one commit "
        "marker per transaction). One partition, one broker.",
        "",
        *(["**Smoke run: a few hundred events, the figures mean nothing.**", ""]
          if o["smoke"] else []),
    ]
    verdict = built["verdict"]
    for workload, s in built["summary"].items():
        lines += [f"## {workload}: {WORKLOADS[workload].title}", ""]
        lines += _table(MODE_COLUMNS, _mode_rows(s))
        alo = s["latency"].get(ALO, {})
        if alo.get("rate") is not None:
            lines += ["", f"Latency at {alo['rate']:,.0f} events/s, "
                          f"{_num(alo['measured_events'])} measured events per run."]
        failures = [f"- {k}: {f}" for phase in ("throughput", "latency")
                    for k, x in s[phase].items() for f in x["failures"]]
        lines += ["", *(["Failures:", *failures, ""] if failures else [])]
    lines += ["## EOS / ALO (ratios of medians)", ""]
    lines += _table(RATIO_COLUMNS, [_ratio_row(w, s, verdict)
                                    for w, s in built["summary"].items()])
    lines += ["", f"Rule: {verdict['rule']}.", "", f"**Verdict: {verdict_line(verdict)}.**", ""]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guarantees",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="A few hundred events, one round, latency on logreg only (CI).")
    parser.add_argument("--rounds", type=int, help="Measured rounds (default 3; smoke 1).")
    parser.add_argument("--warmup-rounds", type=int,
                        help="Discarded leading throughput rounds (default 1; smoke 0).")
    parser.add_argument("--events", type=int, help="Events per throughput run.")
    parser.add_argument("--workloads", default=",".join(WORKLOADS_RUN))
    parser.add_argument("--latency-seconds", type=float,
                        help=f"Paced seconds per latency run (default {LATENCY_SECONDS:g}; "
                             "smoke: the smoke options' event count).")
    parser.add_argument("--rate", type=float,
                        help="Latency rate, events/s (default: half of ALO's median).")
    parser.add_argument("--commit-interval", type=float,
                        help="STREAMLEARN_COMMIT_INTERVAL (default: the worker's default).")
    parser.add_argument("--bootstrap", help="Use this broker (else STREAMLEARN_BOOTSTRAP, "
                                            "else the project's local one).")
    parser.add_argument("--out", type=Path, help="Directory for the JSON and markdown.")
    args = parser.parse_args(argv)
    workloads = tuple(args.workloads.split(","))
    if set(workloads) - set(WORKLOADS_RUN):
        parser.error(f"workloads: {', '.join(WORKLOADS_RUN)}")
    base = SMOKE.with_(latency_workloads=("logreg",), stem="guarantees-smoke") if args.smoke \
        else FULL.with_(latency_workloads=workloads, stem="guarantees")
    changes = {"reps": args.rounds, "warmup_reps": args.warmup_rounds, "events": args.events,
               "out_dir": args.out}
    opts = base.with_(workloads=workloads, **{k: v for k, v in changes.items() if v is not None})
    opts = opts.with_(latency_reps=opts.reps)
    if args.latency_seconds is None:
        args.latency_seconds = 0.0 if args.smoke else LATENCY_SECONDS
    if args.commit_interval is None:
        args.commit_interval = default_commit_interval()
    return opts, args


def main(argv: list[str] | None = None) -> int:
    opts, args = parse(argv)
    console = Console()
    contenders = modes(args.commit_interval)
    address, configured = broker(args.bootstrap or os.environ.get("STREAMLEARN_BOOTSTRAP"))
    environment = machine.describe(address, configured)
    workdir = Path(tempfile.mkdtemp(prefix="streamlearn-guarantees-"))
    console.print(f"broker {address}, scratch {workdir}, commit interval "
                  f"{args.commit_interval:g} s")
    probe = OffsetProbe(address)
    bench = CommittedBench(address, workdir, probe)
    results: list[RunResult] = []
    try:
        for workload in opts.workloads:
            results += run_workload(bench, workload, contenders, opts, args.latency_seconds,
                                    args.rate, console)
    finally:
        bench.stop_reader()
        probe.close()
        remove_topics(bench, console)
    summary = summarize(results, opts.workloads)
    verdict = decide(summary, args.commit_interval)
    built = {
        **environment,
        "options": {
            "events": opts.events, "reps": opts.reps, "warmup_reps": opts.warmup_reps,
            "latency_seconds": args.latency_seconds, "latency_rate": args.rate,
            "commit_interval_s": args.commit_interval, "workloads": list(opts.workloads),
            "smoke": opts.smoke,
        },
        "summary": summary,
        "verdict": verdict,
        "runs": [r.to_dict() for r in results],
    }
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = opts.out_dir / f"{opts.stem}.json"
    md_path = opts.out_dir / f"{opts.stem}.md"
    json_path.write_bytes(orjson.dumps(built, option=orjson.OPT_INDENT_2))
    md_path.write_text(markdown(built))
    console.print(md_path.read_text(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"written: {json_path}, {md_path}")
    failed = [r for r in results if not r.warmup and not r.ok]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
