"""Self-healing for Kafka Connect: restart FAILED tasks whose cause is transient, never the rest.

Connect's own error retry (``errors.retry.timeout``) only retries what a converter or transform
throws as ``org.apache.kafka.connect.errors.RetriableException``. The Avro converter we run
(Confluent 7.0) maps a registry it cannot reach ("Connection refused") to a plain
``DataException``, and a task that throws one is FAILED for good: Connect never restarts a
failed task by itself. So a small supervisor reads each task's trace, classifies its cause, and
restarts only tasks that failed for a reason that goes away by itself (a refused or timed-out
connection, a retriable Kafka exception), with exponential backoff per task and a log line per
restart. A permanent cause (a record larger than the broker accepts, a schema the registry
refuses with 409, bad credentials, a bad config) stays FAILED and is reported: restarting it
would only repeat the failure, and ``errors.tolerance=all`` would skip the record silently.

The classification is on the trace text because that is all Connect exposes; a cause we do not
recognise is treated as permanent (loud, never a restart loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from mode import Service

from streams.connect.client import ConnectClient
from streams.connect.models import FAILED, ConnectorStatus
from streams.errors import ConnectNotFoundError, TransientError
from streams.settings import Settings

log = logging.getLogger(__name__)


class Cause(Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


# Checked first: any of these anywhere in the trace makes the failure permanent, even when a
# retriable class also appears further down (e.g. a RecordTooLarge wrapped in a send callback).
_PERMANENT = tuple(
    re.compile(p, re.IGNORECASE)
    # Not "Tolerance exceeded in error handler": with errors.tolerance=none Connect wraps every
    # converter failure in it, transient ones included.
    for p in (
        r"RecordTooLargeException",
        r"MessageSizeTooLarge|message is \d+ bytes when serialized",
        r"Schema being registered is incompatible",
        r"IncompatibleSchema|error code:? ?409|\(409\)|status code 409",
        r"Schema not found|Subject .* not found",
        r"password authentication failed|Access denied for user|authentication failed",
        r"(Sasl)?AuthenticationException|AuthorizationException|permission denied|must be superuser",
        r"ConfigException|Invalid value .* for configuration",
        r"Unable to parse DDL|ParsingException",
        r"offset.*(mismatch|ahead)|requested starting point .* is ahead|slot .* does not exist",
        r"binlog .* (purged|not found)|Could not find first log file name in binary log index file",
        r"is not part of the publication|publication .* does not exist",
    )
)
_TRANSIENT = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"Connection refused",
        r"Connection reset",
        r"connect timed out|Read timed out|SocketTimeoutException",
        r"\bTimeoutException\b",
        r"RetriableException|NetworkException|DisconnectException|NotLeaderOrFollower",
        r"No route to host|UnknownHostException|Broken pipe|EOFException",
        r"Communications link failure|Failed to connect to",
        r"Connection (is )?closed|connection has been closed",
        r"the database system is (starting up|shutting down|in recovery mode)",
        r"terminating connection due to administrator command",
        r"Service Unavailable|\b503\b",
        r"I/O error|IOException",
    )
)


def classify(trace: str) -> Cause:
    """Transient when only a retriable cause appears in the trace; permanent when any permanent one does."""
    if not trace.strip():
        return Cause.UNKNOWN
    if any(p.search(trace) for p in _PERMANENT):
        return Cause.PERMANENT
    if any(p.search(trace) for p in _TRANSIENT):
        return Cause.TRANSIENT
    return Cause.UNKNOWN


def first_line(trace: str) -> str:
    """The first non-empty line of a Java trace (the exception and its message)."""
    return next((line.strip() for line in trace.splitlines() if line.strip()), "")


def summary(trace: str) -> str:
    """First line, plus the root ``Caused by:`` when there is one (Connect's first line is often
    a wrapper like "Unrecoverable exception from producer send callback")."""
    causes = [line.strip() for line in trace.splitlines() if line.strip().startswith("Caused by:")]
    head = first_line(trace)
    return head if not causes else f"{head} | {causes[-1]}"


@dataclass(frozen=True)
class Backoff:
    """Delay before the n-th consecutive restart of one task: initial * 2^n, capped."""

    initial_s: float = 5.0
    max_s: float = 300.0
    # A task RUNNING this long after a restart counts as healed: its next failure starts over.
    healthy_after_s: float = 600.0

    def delay(self, attempt: int) -> float:
        return float(min(self.initial_s * 2.0 ** max(attempt, 0), self.max_s))


@dataclass
class _Attempts:
    count: int = 0
    last_at: float = float("-inf")


@dataclass(frozen=True)
class HealAction:
    """What one pass decided for one failed connector or task."""

    connector: str
    task: int | None  # None: the connector instance itself
    cause: Cause
    summary: str
    restarted: bool
    attempt: int = 0
    wait_s: float = 0.0  # when not restarted because of backoff: seconds still to wait

    def __str__(self) -> str:
        what = f"{self.connector} " + (f"task {self.task}" if self.task is not None else "(connector)")
        if self.restarted:
            return f"restarted {what}, attempt {self.attempt} ({self.cause.value}: {self.summary})"
        if self.cause is Cause.TRANSIENT:
            return f"{what} FAILED ({self.cause.value}: {self.summary}); next restart in {self.wait_s:.0f} s"
        return f"{what} FAILED, left alone ({self.cause.value}: {self.summary})"


@dataclass
class Healer:
    """Remembers restart attempts between passes so backoff spans them; one per supervisor."""

    client: ConnectClient
    backoff: Backoff = field(default_factory=Backoff)
    names: tuple[str, ...] = ()  # empty: every connector on the cluster
    clock: Callable[[], float] = time.monotonic
    _attempts: dict[tuple[str, int | None], _Attempts] = field(default_factory=dict)

    def heal_once(self) -> list[HealAction]:
        """One pass over the connectors: restart what is due, report every failure seen."""
        actions: list[HealAction] = []
        for name in self.names or tuple(self.client.names()):
            try:
                status = self.client.status(name)
            except ConnectNotFoundError:
                continue  # deleted between the listing and the status call
            actions.extend(self._heal_connector(status))
        return actions

    def _heal_connector(self, status: ConnectorStatus) -> Iterable[HealAction]:
        now = self.clock()
        if status.state == FAILED:
            # A failed connector instance takes its tasks down with it; restart both, once.
            yield self._decide(status.name, None, status.trace, now)
            return
        for task in status.tasks:
            key = (status.name, task.id)
            if task.state != FAILED:
                attempts = self._attempts.get(key)
                if attempts and now - attempts.last_at > self.backoff.healthy_after_s:
                    del self._attempts[key]
                continue
            yield self._decide(status.name, task.id, task.trace, now)

    def _decide(self, name: str, task: int | None, trace: str, now: float) -> HealAction:
        cause, why = classify(trace), summary(trace)[:400]
        if cause is not Cause.TRANSIENT:
            log.error("connector %s%s FAILED, not restarted (%s cause): %s", name,
                      "" if task is None else f" task {task}", cause.value, why)  # fmt: skip
            return HealAction(name, task, cause, why, restarted=False)
        attempts = self._attempts.setdefault((name, task), _Attempts())
        due = attempts.last_at + self.backoff.delay(attempts.count - 1) if attempts.count else now
        if now < due:
            return HealAction(name, task, cause, why, restarted=False, wait_s=due - now)
        if not self._still_failed(name, task):
            return HealAction(name, task, cause, why, restarted=False)  # another supervisor was first
        attempts.count += 1
        attempts.last_at = now
        log.warning("restarting connector %s%s (transient cause, attempt %d, next no sooner than %.0f s): %s",
                    name, "" if task is None else f" task {task}", attempts.count,
                    self.backoff.delay(attempts.count - 1), why)  # fmt: skip
        try:
            if task is None:
                self.client.restart(name, include_tasks=True, only_failed=True)
            else:
                self.client.restart_task(name, task)
        except ConnectNotFoundError:
            pass  # deleted meanwhile: nothing to heal
        return HealAction(name, task, cause, why, restarted=True, attempt=attempts.count)

    def _still_failed(self, name: str, task: int | None) -> bool:
        """Re-read just before restarting: with a supervisor in each worker, a restart by one must
        not be repeated by the other (restarting a RUNNING task would interrupt it)."""
        try:
            status = self.client.status(name)
        except ConnectNotFoundError:
            return False
        if task is None:
            return status.state == FAILED
        return any(t.id == task and t.state == FAILED for t in status.tasks)


# How often the supervisor looks: a failed task costs at most this much on top of its backoff.
DEFAULT_INTERVAL_S = 10.0


async def heal_forever(
    settings: Settings,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    backoff: Backoff | None = None,
    names: tuple[str, ...] = (),
    stop: asyncio.Event | None = None,
    on_action: Callable[[HealAction], None] | None = None,
) -> None:
    """Heal every ``interval_s`` until ``stop`` is set (or the task is cancelled).

    The REST calls are blocking, so each pass runs in a thread; Connect being down is logged and
    retried on the next pass, never raised (the worker must not stop because Connect restarts).
    """
    stop = stop or asyncio.Event()
    with ConnectClient(settings.connect.url) as client:
        healer = Healer(client, backoff or Backoff(), names)
        while not stop.is_set():
            try:
                for action in await asyncio.to_thread(healer.heal_once):
                    if on_action is not None:
                        on_action(action)
            except TransientError as exc:
                log.warning("connector supervisor: Kafka Connect unavailable (%s); next look in %.0f s",
                            exc, interval_s)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)


class HealService(Service):
    """The supervisor as a ``mode`` service, to run beside the pipeline in the worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        names: tuple[str, ...] = (),
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        # names: the connectors this pipeline depends on (e.g. the stems of connectors/*.json);
        # empty supervises every connector on the Connect cluster.
        self.settings, self.interval_s, self.names = settings, interval_s, names
        self._stop = asyncio.Event()

    @Service.task
    async def _heal(self) -> None:
        await heal_forever(self.settings, interval_s=self.interval_s, names=self.names, stop=self._stop)

    async def on_stop(self) -> None:
        self._stop.set()
