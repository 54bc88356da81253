"""The PostgreSQL materializer (psycopg 3, asyncio) the worker runs, over ``SinkCore``.

A blocking flush would stall the worker's event loop (and aiokafka's heartbeats), so the I/O is
async; everything but the I/O lives in ``SinkCore`` and ``flush_steps``. One flush = one
transaction: the rows of every buffered partition, the conflict ledger entries and the consumed
offsets commit together or not at all. When the database rejects a row's data (SQLSTATE 22/23)
the batch is replayed one write per savepoint to name every record that fails alone, and the
transaction is rolled back: the caller dead-letters those records, ``drop`` s them and flushes
again. Scripts and tests use the blocking facade ``PostgresSink`` over this same class.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from streams.errors import SinkRowError, SinkRowErrors, SinkUnavailableError
from streams.sinks.classify import Failure, classify, unavailable
from streams.sinks.contract import FlushResult
from streams.sinks.flush import SinkCore, Step, flush_steps, write_steps
from streams.sinks.mapping import TableMapping
from streams.sinks.offsets import load_offsets_sql
from streams.sinks.postgres import Steps, schema_steps

WAIT_EVENT_SQL = (
    "SELECT wait_event_type, wait_event, pg_blocking_pids(pid) FROM pg_stat_activity WHERE pid = %s"
)


async def drive(cur: psycopg.AsyncCursor[Any], steps: Steps | list[Step]) -> FlushResult:
    if isinstance(steps, list):
        for s in steps:
            await cur.execute(s.query, s.params)
        return FlushResult()
    try:
        step = next(steps)
        while True:
            await cur.execute(step.query, step.params)
            step = steps.send(await cur.fetchall() if step.fetch else [])
    except StopIteration as done:
        result: FlushResult = done.value
        return result


class AsyncPostgresSink(SinkCore):
    """Non-blocking sink; ``add`` stays synchronous (it only buffers)."""

    def __init__(
        self, conninfo: str, mappings: Iterable[TableMapping], consumer_group: str, **kw: Any
    ) -> None:
        super().__init__(mappings, consumer_group, **kw)
        self.conninfo = conninfo
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(self.conninfo)
            except psycopg.Error as exc:
                raise unavailable(exc, "connect") from exc
        return self._conn

    async def _run(self, steps: Steps | list[Step]) -> FlushResult:
        conn = await self.connection()
        try:
            async with conn.transaction(), conn.cursor() as cur:
                return await drive(cur, steps)
        except psycopg.Error as exc:
            if classify(exc) is Failure.TRANSIENT:
                await self.close()
            raise

    async def ensure_schema(self, audit: bool = False) -> None:
        try:
            await self._run(schema_steps(self, audit))
        except psycopg.Error as exc:
            raise unavailable(exc, "schema setup") from exc

    async def assign(self, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """Stored next offsets of newly assigned partitions: seek there before consuming.

        On a session of its own: a rebalance runs while a flush may hold the sink connection's
        transaction open, and a second transaction on that connection would nest inside it and
        end out of order (psycopg's ``OutOfOrderTransactionNesting``). A flush committing at the
        same moment can only make the loaded offset older than the newest: the seek then re-reads
        records the version guard refuses, it never skips one."""
        try:
            async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                cur = await conn.execute(load_offsets_sql(self.control_schema), [self.consumer_group, topic])
                stored = {int(p): int(o) for p, o in await cur.fetchall()}
        except psycopg.Error as exc:
            raise unavailable(exc, "offset load") from exc
        found = {p: o for p, o in stored.items() if p in set(partitions)}
        self.applied_offsets.update({(topic, p): o for p, o in found.items()})
        return found

    async def flush(self) -> FlushResult:
        try:
            result = await self._run(
                flush_steps(
                    self.batch,
                    self.consumer_group,
                    self.control_schema,
                    self.tables,
                    self.moved,
                    self.pending,
                    self.probe,
                )
            )
        except psycopg.Error as exc:
            if classify(exc) is Failure.ROW:
                raise await self._isolate(exc) from exc
            raise unavailable(exc, "flush") from exc
        return self.committed(result)

    async def _isolate(self, exc: psycopg.Error) -> Exception:
        """Every write that fails alone, in one pass (one savepoint each, a failed one rolled back
        as if dropped): ``SinkRowErrors`` when several, so the batch is not flushed once per row."""
        conn = await self.connection()
        rejected: list[SinkRowError] = []
        try:
            async with conn.transaction(force_rollback=True), conn.cursor() as cur:
                for (_, hard, keep), writes in self.batch.groups().items():
                    for w in writes:
                        try:
                            async with conn.transaction():
                                s = write_steps([w], hard, keep)
                                await cur.execute(s.query, s.params)
                        except psycopg.Error as row_exc:
                            if classify(row_exc) is not Failure.ROW:
                                raise
                            msg = f"{type(row_exc).__name__}: {row_exc}"
                            rejected.append(SinkRowError(msg, w.event.origin, w.key, row_exc.sqlstate))
        except psycopg.Error as again:
            return unavailable(again, "row isolation")
        if len(rejected) > 1:
            return SinkRowErrors(rejected)
        if rejected:
            return rejected[0]
        msg = f"batch rejected ({exc.sqlstate}) but no single write fails alone: {exc}"
        return SinkUnavailableError(msg)

    async def wait_event(self) -> str | None:
        """What this sink's session waits on right now (e.g. ``Lock/advisory``), from a second
        session (its own is busy in the statement that waits); ``None``: not waiting."""
        if self._conn is None or self._conn.closed:
            return None
        pid = self._conn.info.backend_pid
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
            cur = await conn.execute(WAIT_EVENT_SQL, [pid])
            row = await cur.fetchone()
        if row is None or row[0] is None:
            return None
        holders = f" held by pid {', '.join(map(str, row[2]))}" if row[2] else ""
        return f"{row[0]}/{row[1]}{holders}"

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
