"""The faust app of one pipeline: the process host of the hot path. The only module that
imports faust (the rest of streamlearn runs, and is tested, without it).

faust runs the process (Worker, signals, services, logging); events do not flow through
faust streams, whose per-message path costs ~290 µs of CPU per event. A faust service owns
the :class:`HotPath` and runs it on a thread of its own: librdkafka calls block, and the
event loop stays free for faust and for control-plane agents (low-rate topics) to come. If
the hot path fails, the service crashes the worker, which exits non-zero; a restart resumes
from the last snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from typing import Any

import faust
from mode import Service

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.kafka.security import faust_sasl_config, ssl_context
from streamlearn.spec.pipeline import Pipeline
from streamlearn.streams.hot_path import HotPath

__all__ = ["HotPathService", "broker_urls", "create_app", "faust_credentials", "run"]

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.5
STALL_S = 30.0
"""A hot path that has not begun a step for this long, with no broker outage under way to
explain it, is logged with where it waits (once per stall): a stuck call says itself."""


def broker_urls(bootstrap: str) -> list[str]:
    """faust's URL form of a ``host:port[,host:port]`` bootstrap string.

    >>> broker_urls("127.0.0.1:9092,kafka:9092")
    ['kafka://127.0.0.1:9092', 'kafka://kafka:9092']
    """
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


class HotPathService(Service):
    """Runs the hot path on a thread; stops it on shutdown, crashes the worker if it fails."""

    def __init__(self, hot_path: HotPath, **kwargs: Any) -> None:
        self.hot_path = hot_path
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="streamlearn-hot-path",
                                        daemon=True)
        super().__init__(**kwargs)

    def _run(self) -> None:
        try:
            self.hot_path.run()
        except BaseException as exc:
            self.error = exc

    async def on_start(self) -> None:
        self._thread.start()

    @Service.task
    async def _watch(self) -> None:
        reported = 0.0
        while not self.should_stop:
            await asyncio.sleep(WATCH_INTERVAL_S)
            stepped = self.hot_path.stepped_at
            if (time.monotonic() - stepped > STALL_S and stepped != reported
                    and self._thread.is_alive() and not self.hot_path.watch.quiet):
                reported = stepped
                self._report_stall(time.monotonic() - stepped)
            if not self._thread.is_alive():
                if self.error is not None:
                    # Our own errors say what to do in one line; others need their traceback.
                    ours = isinstance(self.error, StreamlearnError)
                    log.error("hot path failed: %s", self.error,
                              exc_info=None if ours else self.error)
                    await self.crash(self.error)
                return

    def _report_stall(self, seconds: float) -> None:
        frame = sys._current_frames().get(self._thread.ident or -1)
        where = "".join(traceback.format_stack(frame)[-6:]) if frame is not None else "?"
        log.warning("the hot path has not stepped for %.0f s; it waits in:\n%s", seconds,
                    where.rstrip())

    async def on_stop(self) -> None:
        self.hot_path.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)


def create_app(spec: Pipeline, settings: Settings) -> faust.App:
    datadir = settings.state_dir / "workers" / spec.name
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        # Not the hot path's group: faust's own consumer must never join it.
        f"streamlearn-{spec.name}-host",
        broker=broker_urls(settings.bootstrap_servers),
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(datadir),
        processing_guarantee="at_least_once",
        topic_partitions=spec.partitions,
        topic_disable_leader=True,
        web_enabled=False,
        autodiscover=False,
    )
    # Until control-plane agents exist, faust hosts the process and its producer only: a
    # consumer with no topic would refuse to start.
    app.producer_only = True
    return app


def faust_credentials(settings: Settings) -> Any:
    """faust's ``broker_credentials`` (None for PLAINTEXT), from the security settings."""
    if settings.security_protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(ssl_context=context, **faust_sasl_config(settings))


def run(app: faust.App, hot_path: HotPath, loglevel: str) -> None:
    """faust's Worker runs the app and the hot path's service until SIGTERM/SIGINT."""
    worker = faust.Worker(app, HotPathService(hot_path), loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
