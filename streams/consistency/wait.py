"""``wait(token, timeout)``: many waiters, one evaluation loop, one LISTEN connection.

Waiters register a future; a single loop evaluates the sources' applied positions when a flush
notifies (``LISTEN changefeed_applied``, sent from the flush transaction) or, as the fallback when
no notification arrives, every ``poll_interval`` seconds — only while someone waits. So a thousand
concurrent waiters cost the same two sink connections (listen + query) as one.

Positions only grow: each evaluation yields positions the sink has certainly reached, and the
hub keeps the larger of old and new per domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg

from streams.consistency.sources import Source
from streams.consistency.token import Token, position_text, reached
from streams.consistency.watermark import Evaluator, Position, maximum
from streams.sinks.applied import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    APPLIED = "APPLIED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE"


@dataclass(frozen=True)
class WaitResult:
    status: Status
    applied: str  # the source's applied position, as text ("-" when unknown)
    message: str = ""


@dataclass
class _Waiter:
    token: Token
    future: asyncio.Future[None]
    since: float


@dataclass
class WaitHub:
    sources: Mapping[str, Source]
    group: str
    schema: str
    conninfo: str
    bootstrap: str
    connect_url: str
    poll_interval: float = 0.5
    full_interval: float = 0.1  # at most this often the Kafka + Connect round (idle partitions)
    trust_siblings: bool = True
    positions: dict[str, Position] = field(default_factory=dict)
    evaluations: int = 0
    _waiters: list[_Waiter] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _evaluator: Evaluator | None = None
    _last_full: float = 0.0
    _full: asyncio.Task[None] | None = None

    def check(self, token: Token) -> str | None:
        """Why the token names no source this server knows (None: it does)."""
        source = self.sources.get(token.source)
        if source is None:
            return f"no source {token.source!r} here (known: {', '.join(sorted(self.sources)) or 'none'})"
        if source.kind is not token.kind:
            return f"source {token.source!r} is {source.kind.value}, the token says {token.kind.value}"
        if source.server_id is not None and source.server_id != token.server_id:
            return (
                f"source {token.source!r} is server {source.server_id}, the token is from {token.server_id}"
            )
        return None

    async def start(self) -> None:
        sink = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        self._evaluator = Evaluator(
            self.sources, self.group, self.schema, sink, self.bootstrap, self.connect_url, self.trust_siblings
        )
        with contextlib.suppress(Exception):  # Kafka down: the first full round retries it
            await self._evaluator.refresh_partitions()
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._loop())]

    async def stop(self) -> None:
        for t in [*self._tasks, *([self._full] if self._full is not None else [])]:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._evaluator is not None:
            await self._evaluator.close()
            await self._evaluator.sink.close()
        for w in self._waiters:
            w.future.cancel()

    async def wait(self, token: Token, timeout: float) -> WaitResult:
        problem = self.check(token)
        if problem is not None:
            return WaitResult(Status.UNKNOWN_SOURCE, "-", problem)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(token, loop.create_future(), time.monotonic())
        self._waiters.append(waiter)
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), max(0.0, timeout))
            status = Status.APPLIED
        except TimeoutError:
            status = Status.TIMEOUT
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        applied = position_text(token.kind, self.positions.get(token.source, {}))
        return WaitResult(status, applied)

    async def _listen(self) -> None:
        """Set the wake event on every notification for our schema; reconnect with backoff."""
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    delay = 0.5
                    async for note in conn.notifies():
                        if note.payload == self.schema:
                            self._wake.set()
            except psycopg.Error as exc:
                log.warning(
                    "LISTEN %s lost (%s); polling every %.1f s meanwhile",
                    NOTIFY_CHANNEL,
                    exc,
                    self.poll_interval,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            if not self._waiters:
                continue
            try:
                await self._evaluate()
            except (psycopg.Error, OSError) as exc:  # the fallback poll retries; waiters keep their deadlines
                log.warning("applied positions unreadable: %s", exc)
                await self._reconnect()
                await asyncio.sleep(0.2)
            except Exception:  # a waiter must never hang on a dead loop: log, retry
                log.exception("applied positions evaluation failed")
                await asyncio.sleep(0.2)

    async def _reconnect(self) -> None:
        assert self._evaluator is not None
        with contextlib.suppress(psycopg.Error):
            await self._evaluator.sink.close()
        with contextlib.suppress(psycopg.Error, OSError):
            self._evaluator.sink = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)

    async def _evaluate(self) -> None:
        """The watermark-only read on every wake-up; the Kafka + Connect round for idle partitions
        in a task of its own (at most every ``full_interval``), so it never delays the fast one."""
        ev = self._evaluator
        assert ev is not None
        self.evaluations += 1
        self._merge(await ev.fast())
        pending = {w.token.source for w in self._waiters if not w.future.done()}
        idle = self._full is None or self._full.done()
        if pending and idle and time.monotonic() - self._last_full >= self.full_interval:
            self._last_full = time.monotonic()
            self._full = asyncio.create_task(self._run_full(pending))

    async def _run_full(self, names: set[str]) -> None:
        assert self._evaluator is not None
        try:
            self._merge(await self._evaluator.full(names))
        except (psycopg.Error, OSError) as exc:
            log.warning("caught-up check failed (the next round retries): %s", exc)
        except Exception:
            log.exception("caught-up check failed")

    def _merge(self, positions: Mapping[str, Position]) -> None:
        """Both rules give positions the sink has certainly reached: keep the larger, resolve."""
        for name, pos in positions.items():
            self.positions[name] = maximum(self.positions.get(name, {}), pos)
        for w in self._waiters:
            if not w.future.done() and reached(self.positions.get(w.token.source, {}), w.token.position):
                w.future.set_result(None)


def positions_text(hub: WaitHub) -> dict[str, str]:
    return {n: position_text(s.kind, hub.positions.get(n, {})) for n, s in hub.sources.items()}
