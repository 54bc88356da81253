"""The oracle: compare every mapped source table with its materialized table, once or until equal.

A source table lives in the customers PostgreSQL unless its container is the orders MariaDB
database. Connections are opened per run and closed at the end; ``--wait`` rounds reuse them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pymysql

from streams.settings import Settings
from streams.sinks.mapping import TableMapping
from streams.verify import connections
from streams.verify.compare import TableResult, compare_table
from streams.verify.enrichment import check_lookup, check_name, lookups_of, materialized
from streams.verify.normalize import Dialect
from streams.verify.readers import SqlReader, source_columns
from streams.verify.spec import TableSpec, spec_for, split_source

# Between rounds of --wait: long enough not to load the databases, short enough to see lag drop.
POLL_INTERVAL_S = 2.0


@dataclass(frozen=True)
class VerifyOptions:
    chunk_size: int = 1000
    limit: int = 20


@dataclass
class Databases:
    sink: psycopg.Connection[Any]
    source_postgres: psycopg.Connection[Any]
    source_mariadb: pymysql.Connection[Any]
    settings: Settings

    def source_for(
        self, m: TableMapping
    ) -> tuple[Dialect, psycopg.Connection[Any] | pymysql.Connection[Any]]:
        container, _ = split_source(m.source_table)
        if container == self.settings.source_mariadb.database:
            return Dialect.MARIADB, self.source_mariadb
        return Dialect.POSTGRES, self.source_postgres


@contextmanager
def open_databases(settings: Settings) -> Iterator[Databases]:
    with ExitStack() as stack:
        sink = stack.enter_context(connections.postgres(settings.sink_postgres))
        pg = stack.enter_context(connections.postgres(settings.source_postgres))
        maria = connections.mariadb(settings.source_mariadb)
        stack.callback(maria.close)
        yield Databases(sink, pg, maria, settings)


def build_specs(
    dbs: Databases, mappings: Sequence[TableMapping]
) -> list[tuple[TableSpec, SqlReader, SqlReader]]:
    out = []
    for m in mappings:
        dialect, conn = dbs.source_for(m)
        container, table = split_source(m.source_table)
        spec = spec_for(m, dialect, source_columns(conn, dialect, container, table) or None)
        out.append((spec, SqlReader(conn, spec, spec.source), SqlReader(dbs.sink, spec, spec.sink)))
    return out


# Each round may see more tables: a mirrored table exists once a worker wrote its first row.
MappingSource = Callable[[], tuple[Sequence[TableMapping], Sequence[str]]]


def verify_once(
    dbs: Databases, mappings: Sequence[TableMapping], options: VerifyOptions, pending: Sequence[str] = ()
) -> list[TableResult]:
    """Compare every mapping; a declared table not materialized yet (``pending``) is a failure."""
    results = [TableResult(t, error="not in the sink yet: no worker has written it") for t in pending]
    for spec, source, sink in build_specs(dbs, mappings):
        try:
            result = compare_table(
                spec.name, source, sink, spec.value_names, options.chunk_size, options.limit
            )
        except (psycopg.Error, pymysql.Error) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            result = TableResult(spec.name, error=f"{type(exc).__name__}: {first_line}")
            for conn in (dbs.sink, dbs.source_postgres):
                conn.rollback()
        result.derived = spec.derived
        result.source = f"{spec.source.schema}.{spec.source.table}"
        results.append(result)
    for m, lk in lookups_of(list(mappings)):
        try:
            if materialized(dbs.sink, m, lk):
                results.append(check_lookup(dbs.sink, m, lk, options.limit))
        except psycopg.Error as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            results.append(TableResult(check_name(m, lk), error=f"{type(exc).__name__}: {first_line}"))
            dbs.sink.rollback()
    return results


def verify_wait(
    dbs: Databases,
    mappings: Sequence[TableMapping] | MappingSource,
    options: VerifyOptions,
    timeout_s: float,
    on_round: Callable[[int, list[TableResult]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = POLL_INTERVAL_S,
) -> list[TableResult]:
    """Repeat until every table matches or ``timeout_s`` passes, ``interval`` seconds between
    rounds; return the last round."""
    deadline = clock() + timeout_s
    attempt = 0
    while True:
        attempt += 1
        current, pending = mappings() if callable(mappings) else (mappings, ())
        results = verify_once(dbs, current, options, pending)
        if on_round is not None:
            on_round(attempt, results)
        if all(r.ok for r in results) or clock() >= deadline:
            return results
        sleep(min(interval, max(0.0, deadline - clock())))
