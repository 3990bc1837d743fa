"""Named points where a test kills its own worker with SIGKILL, to hit a crash window
exactly.

A kill -9 from outside lands anywhere; the windows that matter for exactly-once are a few
microseconds wide (between a transaction's commit and the snapshot that follows it). A
worker started with ``STREAMLEARN_FAILPOINTS=learner-action-committed`` kills itself there,
as the kernel would: no handler, no flush, no clean stop. For tests only; unset, a
failpoint costs one set lookup.

>>> armed("") == frozenset()
True
>>> sorted(armed("a, b"))
['a', 'b']
"""

from __future__ import annotations

import os
import signal

__all__ = ["armed", "hit"]

POINTS = ("learner-action-committed", "learner-command-committed")
"""A policy action's or a registry command's transaction committed; its version not yet
written."""


def armed(value: str) -> frozenset[str]:
    return frozenset(p.strip() for p in value.split(",") if p.strip())


_ARMED = armed(os.environ.get("STREAMLEARN_FAILPOINTS", ""))


def hit(point: str) -> None:
    """SIGKILL this process if ``point`` is armed."""
    if point in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
