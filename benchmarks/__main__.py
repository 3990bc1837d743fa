"""``python -m benchmarks [--smoke] [--explore] [--profile] ...`` (``make bench``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from benchmarks.options import EXPLORE, FULL, SMOKE, Options
from benchmarks.workloads import WORKLOADS


def parse(argv: list[str] | None = None) -> tuple[Options, str | None]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true",
                        help="A few hundred events, one repetition, every contender (CI).")
    parser.add_argument("--explore", action="store_true",
                        help="A against C3 (the confluent-kafka loop), latency against "
                             "E3, and py-spy profiles of both (needs py-spy in the venv).")
    parser.add_argument("--profile", help="Comma-separated contenders to profile with py-spy.")
    parser.add_argument("--events", type=int, help="Events per throughput run.")
    parser.add_argument("--reps", type=int, help="Measured repetitions.")
    parser.add_argument("--workloads", help=f"Comma-separated: {','.join(WORKLOADS)} (fraud "
                                            "runs interleaved with fraud_raw if both given).")
    parser.add_argument("--contenders", help="Comma-separated keys, e.g. A,B,C3.")
    parser.add_argument("--out", type=Path, help="Directory for the JSON and markdown.")
    parser.add_argument("--stem", help="File name stem (default latest, smoke or explore).")
    parser.add_argument("--bootstrap", help="Use this broker instead of the local one.")
    args = parser.parse_args(argv)
    unknown = set(args.workloads.split(",")) - set(WORKLOADS) if args.workloads else set()
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; known: {', '.join(WORKLOADS)}")
    opts = SMOKE if args.smoke else EXPLORE if args.explore else FULL
    changes = {
        "profile": tuple(args.profile.split(",")) if args.profile else None,
        "events": args.events,
        "reps": args.reps,
        "workloads": tuple(args.workloads.split(",")) if args.workloads else None,
        "contenders": tuple(args.contenders.split(",")) if args.contenders else None,
        "out_dir": args.out,
        "stem": args.stem,
    }
    return opts.with_(**{k: v for k, v in changes.items() if v is not None}), args.bootstrap


def main(argv: list[str] | None = None) -> int:
    from benchmarks.harness import run_benchmark

    opts, bootstrap = parse(argv)
    built = run_benchmark(opts, bootstrap, Console())
    failed = [
        key for summary in built["summary"].values()
        for phase in ("throughput", "latency")
        for key, s in summary[phase].items() if s["failures"]
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
