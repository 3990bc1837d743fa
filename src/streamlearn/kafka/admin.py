"""Short-lived kafka-python admin calls: readiness, topics, consumer group deletion.

Each helper opens one ``KafkaAdminClient`` (:func:`streamlearn.kafka.python_clients.admin`)
and closes it before returning, so callers never hold a connection (or its background IO
thread) they did not ask for. ``settings`` gives the security settings (default: this
process's, :func:`streamlearn.config.load_settings`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import kafka.errors
from kafka import KafkaAdminClient
from kafka.admin import UserScramCredentialUpsertion
from kafka.errors import KafkaError, for_code

from streamlearn.config import Settings
from streamlearn.errors import BrokerError
from streamlearn.kafka import python_clients
from streamlearn.kafka.security import client_errors, failure_hint, resolve

__all__ = [
    "GroupNotEmpty",
    "create_topics",
    "delete_group",
    "delete_topics",
    "topic_partitions",
    "wait_ready",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CLIENT_ID = "streamlearn-admin"
# Kafka error codes this module treats as "fine": the topic is (or is not) there already.
_UNKNOWN_TOPIC = 3
_TOPIC_EXISTS = 36
_POLL_S = 0.2
_GROUP_DELETED = "OK"
_GROUP_NOT_FOUND = "GroupIdNotFoundError"
_GROUP_NOT_EMPTY = "NonEmptyGroupError"


class GroupNotEmpty(BrokerError):
    """A consumer group cannot be deleted while it has members."""


@contextlib.contextmanager
def _admin(bootstrap: str, timeout: float, settings: Settings | None
           ) -> Iterator[KafkaAdminClient]:
    ms = max(int(timeout * 1000), 100)
    client = python_clients.admin(bootstrap, settings, client_id=CLIENT_ID,
                                  bootstrap_timeout_ms=ms, request_timeout_ms=ms)
    try:
        yield client
    finally:
        client.close()


SCRAM_ITERATIONS = 8192
"""Kafka's default and minimum for SCRAM-SHA-512 is 4096; kafka-configs uses 8192 too."""

ANNOUNCE_AFTER_S = 20.0
"""Long enough that a refused login, known when the first attempt times out (5 s:
kafka-python retries a refused login until then), stays the one line it should be."""


def wait_ready(bootstrap: str, timeout: float, settings: Settings | None = None,
               announce: bool = False) -> None:
    """Return once the cluster at ``bootstrap`` serves an admin request.

    An open port is not enough: a KRaft broker accepts connections before it is
    unfenced, so ready means DescribeCluster lists an unfenced broker and a controller.
    A refused login or an untrusted certificate fails at once: waiting cannot fix them.
    ``announce``: say once that it waits, after ``ANNOUNCE_AFTER_S`` (rather than being
    silent until the timeout).
    """
    settings = resolve(settings)
    started = time.monotonic()
    deadline = started + timeout
    problem: str | None = "no answer"
    while True:
        remaining = deadline - time.monotonic()
        try:
            with client_errors() as logged, \
                    _admin(bootstrap, min(max(remaining, 0.5), 5.0), settings) as client:
                cluster = client.describe_cluster()
            problem = _not_ready_reason(cluster)
            if problem is None:
                return
        except (KafkaError, OSError) as e:
            problem = str(e) or type(e).__name__
            hint = failure_hint(settings, " ".join([type(e).__name__, problem, *logged]))
            if hint is not None:
                raise BrokerError(f"kafka at {bootstrap}: {hint}") from None
        if time.monotonic() + _POLL_S >= deadline:
            raise BrokerError(f"kafka at {bootstrap} not ready after {timeout:g} s: {problem}")
        if announce and time.monotonic() - started >= ANNOUNCE_AFTER_S:
            announce = False
            log.warning("waiting for kafka at %s (up to %g s, STREAMLEARN_BROKER_TIMEOUT): %s",
                        bootstrap, timeout, problem)
        time.sleep(_POLL_S)


def _not_ready_reason(cluster: Mapping[str, Any]) -> str | None:
    brokers = [b for b in cluster.get("brokers", []) if not b.get("is_fenced", False)]
    if not brokers:
        return "no unfenced broker yet"
    if cluster.get("controller_id", -1) < 0:
        return "no controller yet"
    return None


def topic_partitions(bootstrap: str, name: str, timeout: float = 10.0,
                     settings: Settings | None = None) -> int | None:
    """Partition count of topic ``name``, or None if it does not exist."""
    with _admin(bootstrap, timeout, settings) as client:
        return _partition_counts(client, [name])[name]


def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    configs: Mapping[str, Mapping[str, str]] | None = None,
    timeout: float = 30.0,
    settings: Settings | None = None,
) -> None:
    """Create ``topics`` (name -> partitions) that do not exist yet, and wait until usable.

    Existing topics are fine when their partition count matches; a mismatch raises
    :class:`BrokerError`, because keyed state would silently land on other partitions.
    """
    if not topics:
        return
    configs = configs or {}
    names = list(topics)
    with _admin(bootstrap, timeout, settings) as client:
        found = _partition_counts(client, names)
        _check_counts(topics, found)
        missing = {
            name: {"num_partitions": topics[name], "configs": dict(configs.get(name, {}))}
            for name in names
            if found[name] is None
        }
        if missing:
            log.info("creating topics %s on %s", ", ".join(missing), bootstrap)
            result = client.create_topics(missing, raise_errors=False)
            _raise_topic_errors(result["topics"], ignore=_TOPIC_EXISTS, action="create")
        try:
            client.wait_for_topics(names, timeout_ms=int(timeout * 1000))
        except KafkaError as e:
            raise BrokerError(
                f"topics not usable on {bootstrap} after {timeout:g} s: {e}"
            ) from None
        # Another process may have created one of them first, with another count.
        _check_counts(topics, _partition_counts(client, names))


def delete_topics(bootstrap: str, names: Iterable[str], timeout: float = 30.0,
                  settings: Settings | None = None) -> None:
    """Delete topics ``names``; those that do not exist are ignored."""
    names = list(names)
    if not names:
        return
    with _admin(bootstrap, timeout, settings) as client:
        result = client.delete_topics(names, raise_errors=False)
        _raise_topic_errors(result["topics"], ignore=_UNKNOWN_TOPIC, action="delete")
        # Deletion is asynchronous; wait so that a re-create right after cannot collide.
        deadline = time.monotonic() + timeout
        while any(_partition_counts(client, names).values()):
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"topics {names} still present on {bootstrap} after {timeout:g} s"
                )
            time.sleep(_POLL_S)


def delete_group(bootstrap: str, group_id: str, timeout: float = 30.0,
                 settings: Settings | None = None) -> bool:
    """Delete consumer group ``group_id`` and its committed offsets.

    Returns False if there was no such group. Raises :class:`GroupNotEmpty` while the
    group has members: Kafka only deletes a group nobody consumes in.
    """

    def attempt() -> str:
        result = client.delete_groups([group_id]).get(group_id, _GROUP_NOT_FOUND)
        error = getattr(kafka.errors, result, None)
        if error is not None and getattr(error, "retriable", False):
            raise error()
        return str(result)

    with _admin(bootstrap, timeout, settings) as client:
        # A fresh cluster has no coordinator until __consumer_offsets exists: retry that.
        result = _retry(attempt, timeout, f"delete consumer group {group_id!r}")
    if result == _GROUP_NOT_EMPTY:
        raise GroupNotEmpty(f"consumer group {group_id!r} on {bootstrap} still has members")
    if result not in (_GROUP_DELETED, _GROUP_NOT_FOUND):
        raise BrokerError(f"cannot delete consumer group {group_id!r}: {result}")
    return result == _GROUP_DELETED


def upsert_scram_user(bootstrap: str, user: str, mechanism: str, password: str,
                      timeout: float, settings: Settings | None = None) -> None:
    """Create (or reset the password of) a SCRAM user (``mechanism``: SCRAM-SHA-512 or
    SCRAM-SHA-256); the broker stores it as ``kafka-configs --add-config`` does."""
    change = UserScramCredentialUpsertion(user, mechanism, password,
                                          iterations=SCRAM_ITERATIONS)
    with _admin(bootstrap, timeout, settings) as client:
        errors = client.alter_user_scram_credentials([change])
    failed = {name: error for name, error in errors.items() if error}
    if failed:
        raise BrokerError(f"cannot set SCRAM user {user!r}: {failed.get(user, failed)}")


def _retry(call: Callable[[], T], timeout: float, what: str) -> T:
    """``call()`` again while it raises a retriable Kafka error, for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaError as e:
            if not e.retriable or time.monotonic() + _POLL_S >= deadline:
                raise BrokerError(f"cannot {what}: {e}") from None
        time.sleep(_POLL_S)


def _partition_counts(client: KafkaAdminClient, names: list[str]) -> dict[str, int | None]:
    counts: dict[str, int | None] = dict.fromkeys(names)
    for topic in client.describe_topics(names):
        code = topic.get("error_code", 0)
        if code == 0:
            counts[topic["name"]] = len(topic.get("partitions") or [])
        elif code != _UNKNOWN_TOPIC:
            raise BrokerError(f"cannot describe topic {topic['name']!r}: {_error_name(code)}")
    return counts


def _check_counts(wanted: Mapping[str, int], found: Mapping[str, int | None]) -> None:
    for name, count in found.items():
        if count is not None and count != wanted[name]:
            raise BrokerError(
                f"topic {name!r} has {count} partitions, wanted {wanted[name]}: "
                "delete the topic or use its partition count"
            )


def _raise_topic_errors(results: Iterable[Mapping[str, Any]], ignore: int, action: str) -> None:
    for topic in results:
        code = topic.get("error_code", 0)
        if code not in (0, ignore):
            detail = topic.get("error_message") or _error_name(code)
            raise BrokerError(f"cannot {action} topic {topic.get('name')!r}: {detail}")


def _error_name(code: int) -> str:
    return for_code(code).__name__
