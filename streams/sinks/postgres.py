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
from psycopg.conninfo import make_conninfo

from streams.errors import SinkRowError, SinkUnavailableError
from streams.settings import DatabaseSettings
from streams.sinks.classify import Failure, classify, unavailable
from streams.sinks.contract import FlushResult
from streams.sinks.ddl import control_tables_ddl, mapping_ddl
from streams.sinks.flush import PARTITION_LOCK_SQL, SinkCore, Step, ddl_lock_keys, flush_steps, write_steps
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


CATALOG_SQL = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
    " array_position(i.indkey::int2[], a.attnum) FROM pg_attribute a"
    " LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary"
    " WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text))"
    " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)


def schema_steps(core: SinkCore, audit: bool) -> Steps:
    """Control tables, every static mapping's tables; mirrored tables that exist are read back
    from the catalog (``SinkTables.seed``). Under the DDL locks: two workers starting at once
    never create the same table or type concurrently."""
    core.tables.audit = audit
    static = [m for t, m in core.mappings.items() if t not in core.tables.mirrored]
    keys = [*ddl_lock_keys(static), f"changefeed\x1f{core.control_schema}\x1fddl\x1fcontrol"]
    yield Step(PARTITION_LOCK_SQL, [sorted(keys)], False)
    for s in control_tables_ddl(core.control_schema):
        yield Step(s, (), False)
    for m in static:
        for s in mapping_ddl(m, core.tables):
            yield Step(s, (), False)
    resolver = core.tables.resolver
    for table_id in sorted(core.tables.mirrored):
        assert resolver is not None  # mirrored tables come from a resolver
        schema, table = resolver.sink_table(table_id)
        rows = yield Step(CATALOG_SQL, [schema, table], True)
        if not rows:
            continue
        key = [name for name, _, at in sorted((r for r in rows if r[2] is not None), key=lambda r: r[2])]
        columns = [(str(name), str(kind)) for name, kind, _ in rows]
        mapping = resolver.from_sink(table_id, columns, key)
        if mapping is not None:
            core.tables.seed(table_id, mapping)
            for s in mapping_ddl(mapping, core.tables):
                yield Step(s, (), False)
    return FlushResult()


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
            result = self._run(
                flush_steps(self.batch, self.consumer_group, self.control_schema, self.tables, self.pending)
            )
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
