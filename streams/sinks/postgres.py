"""The PostgreSQL materializer (psycopg 3), sync and async, over the shared ``SinkCore``.

One flush = one transaction: the rows of every buffered partition, the conflict ledger entries
and the consumed offsets commit together or not at all. When the database rejects a row's data
(SQLSTATE 22/23) the batch is replayed one write per savepoint to name the record, and the
transaction is rolled back: the caller dead-letters that record, ``drop`` s it and flushes again.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from streams.errors import SinkRowError, SinkUnavailableError
from streams.settings import DatabaseSettings
from streams.sinks.classify import Failure, classify, unavailable
from streams.sinks.contract import FlushResult
from streams.sinks.ddl import (
    added_columns_ddl,
    audit_trigger_ddl,
    control_tables_ddl,
    materialized_table_ddl,
)
from streams.sinks.flush import SinkCore, Step, flush_steps, write_steps
from streams.sinks.mapping import TableMapping
from streams.sinks.offsets import load_offsets_sql

Steps = Generator[Step, list[Any], FlushResult]


def conninfo_from(
    db: DatabaseSettings, connect_timeout_s: int = 5, application_name: str = "changefeed-sink"
) -> str:
    """A libpq connection string; the short timeout keeps a down sink a fast, retryable error.

    ``application_name`` is what ``pg_stat_activity`` shows (workers pass ``<app id>-<pid>``).
    """
    return make_conninfo(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password.get_secret_value(),
        dbname=db.database,
        connect_timeout=connect_timeout_s,
        application_name=application_name[:63],  # NAMEDATALEN - 1
    )


# Two workers starting at once ran the same CREATE ... IF NOT EXISTS statements concurrently;
# IF NOT EXISTS does not serialize them, so one died on pg_type's unique index (UniqueViolation
# on pg_type_typname_nsp_index). A transaction-scoped advisory lock, one per database, makes
# the second wait for the first's commit and then find everything in place.
SCHEMA_LOCK_SQL = sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended('changefeed schema setup', 0))")


def schema_steps(core: SinkCore, audit: bool) -> list[Step]:
    stmts = [SCHEMA_LOCK_SQL, *control_tables_ddl(core.control_schema)]
    for m in core.mappings.values():
        stmts += materialized_table_ddl(m) + added_columns_ddl(m)
        if audit:
            stmts += audit_trigger_ddl(m, core.control_schema)
    return [Step(s, (), False) for s in stmts]


def drive(cur: psycopg.Cursor[Any], steps: Steps | list[Step]) -> FlushResult:
    """Execute steps on ``cur``, feeding each step's rows back into the plan."""
    if isinstance(steps, list):
        for s in steps:
            cur.execute(s.query, s.params)
        return FlushResult()
    try:
        step = next(steps)
        while True:
            cur.execute(step.query, step.params)
            step = steps.send(cur.fetchall() if step.fetch else [])
    except StopIteration as done:
        result: FlushResult = done.value
        return result


class PostgresSink(SinkCore):
    """Blocking sink for scripts, tests and thread-based workers."""

    def __init__(
        self, conninfo: str, mappings: Iterable[TableMapping], consumer_group: str, **kw: Any
    ) -> None:
        super().__init__(mappings, consumer_group, **kw)
        self.conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None

    def connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self.conninfo)
            except psycopg.Error as exc:
                raise unavailable(exc, "connect") from exc
        return self._conn

    def _run(self, steps: Steps | list[Step]) -> FlushResult:
        conn = self.connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                return drive(cur, steps)
        except psycopg.Error as exc:
            if classify(exc) is Failure.TRANSIENT:
                self.close()  # the connection may be broken; reconnect on the next call
            raise

    def ensure_schema(self, audit: bool = False) -> None:
        """Create control and materialized tables if missing (idempotent)."""
        try:
            self._run(schema_steps(self, audit))
        except psycopg.Error as exc:
            raise unavailable(exc, "schema setup") from exc

    def assign(self, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """Load the sink's stored offsets for newly assigned partitions: where to seek to."""
        try:
            rows = self.connection().execute(
                load_offsets_sql(self.control_schema), [self.consumer_group, topic]
            )
            stored = {int(p): int(o) for p, o in rows.fetchall()}
            self.connection().rollback()
        except psycopg.Error as exc:
            raise unavailable(exc, "offset load") from exc
        wanted = set(partitions)
        found = {p: o for p, o in stored.items() if p in wanted}
        self.applied_offsets.update({(topic, p): o for p, o in found.items()})
        return found

    def flush(self) -> FlushResult:
        """Commit rows, ledger and offsets together; raise without committing anything."""
        try:
            result = self._run(flush_steps(self.batch, self.consumer_group, self.control_schema))
        except psycopg.Error as exc:
            if classify(exc) is Failure.ROW:
                raise self._isolate(exc) from exc
            raise unavailable(exc, "flush") from exc
        return self.committed(result)

    def _isolate(self, exc: psycopg.Error) -> Exception:
        """Find the first write whose data the database rejects, each in its own savepoint."""
        conn = self.connection()
        try:
            with conn.transaction(force_rollback=True), conn.cursor() as cur:
                for (_, hard, keep), writes in self.batch.groups().items():
                    for w in writes:
                        try:
                            with conn.transaction():
                                s = write_steps([w], hard, keep)
                                cur.execute(s.query, s.params)
                        except psycopg.Error as row_exc:
                            if classify(row_exc) is Failure.ROW:
                                msg = f"{type(row_exc).__name__}: {row_exc}"
                                return SinkRowError(msg, w.event.origin, w.key, row_exc.sqlstate)
                            raise
        except psycopg.Error as again:
            return unavailable(again, "row isolation")
        msg = f"batch rejected ({exc.sqlstate}) but no single write fails alone: {exc}"
        return SinkUnavailableError(msg)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
