"""Throughput of the sink's guarded upsert: ``executemany`` (pipelined) vs one ``UNNEST`` statement.

Usage: ``.venv/bin/python bench/sink_bench.py [--dsn DSN] [--rows N] [--batch B]``.
Without ``--dsn`` it uses the local stack's sink PostgreSQL from the settings. Everything happens
in a throwaway schema that is dropped at the end. Prints rows/s for each strategy, for fresh keys
(inserts) and for newer versions of existing keys (updates), plus the full ``PostgresSink`` path
(ChangeEvent → de-dup → guarded UNNEST upsert + offsets in one transaction).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from streams.cdc import parse_change_event
from streams.settings import load_settings
from streams.sinks import Column, PostgresSink, TableMapping, conninfo_from
from streams.sinks.batch import to_write
from streams.sinks.flush import write_params
from streams.sinks.statements import upsert_sql, upsert_values_sql


def _event(i: int, version: int, offset: int) -> Any:
    lsn = version * 10_000_000 + i
    return parse_change_event(
        {
            "op": "u",
            "after": {"id": i, "email": f"user{i}@example.com", "bio": f"v{version} " + "x" * 100},
            "source": {
                "connector": "postgresql",
                "schema": "public",
                "table": "customers",
                "sequence": json.dumps([str(lsn - 1), str(lsn)]),
                "txId": version,
            },
            "ts_ms": 1_700_000_000_000,
        },
        topic="bench",
        partition=0,
        offset=offset,
    )


def _timed(label: str, n: int, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    rate = n / (time.perf_counter() - start)
    print(f"{label:<44} {rate:>10,.0f} rows/s")
    return rate


def main() -> None:  # one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2_000)
    args = parser.parse_args()
    dsn = args.dsn or conninfo_from(load_settings().sink_postgres)
    schema = f"cf_bench_{uuid.uuid4().hex[:8]}"
    cols = [Column("id", type="bigint"), Column("email"), Column("bio")]
    maps = {
        s: TableMapping(
            "public.customers",
            f"t_{s}",
            cols,
            ["id"],
            sink_schema=schema,
            delete_policy="soft" if s == "soft" else "hard",
        )
        for s in ("many", "soft", "unnest", "sink")
    }
    n, size = args.rows, args.batch
    events = {v: [_event(i, v, i) for i in range(n)] for v in (1, 2)}
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        for m in maps.values():  # one sink per table: they share a source table
            setup = PostgresSink(dsn, [m], "bench", control_schema=schema)
            setup.ensure_schema()
            setup.close()
        sink = PostgresSink(dsn, [maps["sink"]], "bench", control_schema=schema)
        conn = psycopg.connect(dsn)

        def executemany(version: int) -> None:
            query = upsert_values_sql(maps["many"])
            for lo in range(0, n, size):
                writes = [to_write(maps["many"], e) for e in events[version][lo : lo + size]]
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(query, [(*w.key, *w.values, w.position, None) for w in writes])

        def unnest(version: int, name: str = "unnest") -> None:
            query = upsert_sql(maps[name])
            for lo in range(0, n, size):
                writes = [to_write(maps[name], e) for e in events[version][lo : lo + size]]
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(query, write_params(writes, False))
                    cur.fetchall()

        def full_sink(version: int) -> None:
            for lo in range(0, n, size):
                for e in events[version][lo : lo + size]:
                    sink.add(0, e)
                sink.flush()

        print(f"{n:,} rows, batches of {size:,}, PostgreSQL at {conn.info.host}:{conn.info.port}")
        for version, phase in ((1, "insert"), (2, "update")):
            _timed(f"executemany (pipeline), guarded, {phase}", n, lambda v=version: executemany(v))
            _timed(f"UNNEST guarded, soft-delete table, {phase}", n, lambda v=version: unnest(v, "soft"))
            _timed(f"UNNEST guarded + tombstone check, {phase}", n, lambda v=version: unnest(v))
            sink.applied_offsets.clear()  # the second pass reuses offsets 0..n
            _timed(f"PostgresSink add+flush (+offsets), {phase}", n, lambda v=version: full_sink(v))
        conn.close()
        sink.close()
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
