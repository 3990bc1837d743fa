"""Explore contender: A unchanged, except faust's consumer hands each message to the stream
without ``Service.wait_first`` (which creates four tasks and an ``asyncio.wait`` per message).

Measurement only: the fast path cannot interrupt a callback blocked on a full stream buffer
when a rebalance suspends the flow, which the original does. Same CLI as ``streamlearn``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.consumer import Consumer
from mode.services import WaitResults

_original_wait_first = Consumer.wait_first


async def _fast_wait_first(self: Any, *coros: Any, timeout: Any = None) -> WaitResults:
    # Only the per-message call in Consumer._drain_messages matches: (callback, suspend wait).
    if (
        len(coros) == 2
        and timeout is None
        and asyncio.iscoroutine(coros[0])
        and asyncio.iscoroutine(coros[1])
        and not (self.suspend_flow.is_set() or self._stopped.is_set() or self._crashed.is_set())
    ):
        coros[1].close()
        return WaitResults([coros[0]], [await coros[0]], False)
    return await _original_wait_first(self, *coros, timeout=timeout)


def main() -> None:
    Consumer.wait_first = _fast_wait_first  # type: ignore[method-assign]
    from streamlearn.cli import main as streamlearn_main

    streamlearn_main()


if __name__ == "__main__":
    main()
