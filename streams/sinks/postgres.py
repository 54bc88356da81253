"""The PostgreSQL materializer's shared parts: connection strings, schema setup, a blocking facade.

One flush = one transaction: the rows of every buffered partition, the conflict ledger entries
and the consumed offsets commit together or not at all. When the database rejects a row's data
(SQLSTATE 22/23) the batch is replayed one write per savepoint to name the record, and the
transaction is rolled back: the caller dead-letters that record, ``drop`` s it and flushes again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterable
from typing import Any

from psycopg.conninfo import make_conninfo

from streams.settings import DatabaseSettings
from streams.sinks.contract import FlushResult
from streams.sinks.ddl import control_tables_ddl, mapping_ddl
from streams.sinks.flush import PARTITION_LOCK_SQL, SinkCore, Step, ddl_lock_keys
from streams.sinks.mapping import TableMapping

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


class PostgresSink:
    """A blocking facade over ``AsyncPostgresSink`` for scripts, tests and the benchmark.

    One implementation, not a twin: the same sink the worker runs, each I/O call driven to
    completion on a private event loop. Buffering (``add``, ``mark``, ``drop``, ``batch``,
    ``tables`` …) is the async sink's own synchronous code, reached through attribute delegation.
    """

    def __init__(
        self, conninfo: str, mappings: Iterable[TableMapping], consumer_group: str, **kw: Any
    ) -> None:
        from streams.sinks.postgres_async import AsyncPostgresSink  # it imports schema_steps from here

        self.sink = AsyncPostgresSink(conninfo, mappings, consumer_group, **kw)
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)

    def ensure_schema(self, audit: bool = False) -> None:
        """Create control and materialized tables if missing (idempotent)."""
        self._loop.run_until_complete(self.sink.ensure_schema(audit))

    def assign(self, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """The sink's stored offsets for newly assigned partitions: where to seek to."""
        return self._loop.run_until_complete(self.sink.assign(topic, partitions))

    def flush(self) -> FlushResult:
        """Commit rows, ledger and offsets together; raise without committing anything."""
        return self._loop.run_until_complete(self.sink.flush())

    def close(self) -> None:
        self._loop.run_until_complete(self.sink.close())
        self._loop.close()
