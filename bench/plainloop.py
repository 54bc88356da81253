"""The "no framework" peer: confluent-kafka + fastavro + psycopg, the same keyed, guarded upserts.

One loop: consume up to 5,000 records, decode (fastavro via the registry's cached schemas), keep
the newest change per key, then ONE transaction: UNNEST upsert guarded by position, deletes, and
the consumed offsets. Positions are Kafka offsets (each table has its own one-partition topic).
Run as ``python -m bench.plainloop ARGS_JSON``; prints a JSON result line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterable
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition

from streams.codecs import AvroDecoder
from streams.registry.client import RegistryClient

BATCH = 5000
# source table -> (sink table, [(source column, sink column, SQL type)]); key first
TABLES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "customers": (
        "customer_directory",
        [
            ("id", "customer_id", "bigint"),
            ("email", "email", "text"),
            ("first_name", "first_name", "text"),
            ("last_name", "last_name", "text"),
            ("phone", "phone", "text"),
            ("tier", "tier", "text"),
        ],
    ),
    "orders": (
        "order_view",
        [
            ("id", "order_id", "bigint"),
            ("customer_id", "customer_id", "bigint"),
            ("status", "status", "text"),
            ("total_cents", "total_cents", "bigint"),
            ("currency", "currency", "text"),
        ],
    ),
}
Change = tuple[str, bool, tuple[Any, ...], int]  # table, deleted, values (key first), position


def ddl(schema: str) -> list[str]:
    out = [f'CREATE SCHEMA IF NOT EXISTS "{schema}"']
    for table, cols in TABLES.values():
        body = ", ".join(f"{c} {t}" for _, c, t in cols)
        out.append(
            f'CREATE TABLE IF NOT EXISTS "{schema}".{table} ({body}, pos bigint NOT NULL,'
            f" PRIMARY KEY ({cols[0][1]}))"
        )
    out.append(
        f'CREATE TABLE IF NOT EXISTS "{schema}".plain_offsets'
        " (topic text, part int, next_offset bigint, PRIMARY KEY (topic, part))"
    )
    return out


def upsert_sql(schema: str, source: str) -> str:
    table, cols = TABLES[source]
    names = [c for _, c, _ in cols] + ["pos"]
    types = [t for _, _, t in cols] + ["bigint"]
    sets = ", ".join(f"{n} = EXCLUDED.{n}" for n in names[1:])
    return (
        f'INSERT INTO "{schema}".{table} ({", ".join(names)})'  # noqa: S608 - the benchmark's own names
        f" SELECT * FROM unnest({', '.join(f'%s::{t}[]' for t in types)})"
        f" ON CONFLICT ({names[0]}) DO UPDATE SET {sets} WHERE {table}.pos < EXCLUDED.pos"
    )


def to_change(value: dict[str, Any], offset: int) -> Change | None:
    source = value["source"]["table"]
    if source not in TABLES:
        return None
    _, cols = TABLES[source]
    deleted = value["op"] == "d"
    row = value["before"] if deleted else value["after"]
    return source, deleted, tuple(row.get(s) for s, _, _ in cols), offset


def write(
    conn: psycopg.Connection[Any], schema: str, changes: Iterable[Change], offsets: dict[str, int]
) -> int:
    newest: dict[tuple[str, Any], Change] = {}
    for c in changes:
        newest[(c[0], c[2][0])] = c  # later offset wins: one ON CONFLICT must not touch a key twice
    rows = 0
    with conn.transaction(), conn.cursor() as cur:
        for source, (table, cols) in TABLES.items():
            ups = [c for c in newest.values() if c[0] == source and not c[1]]
            dels = [c for c in newest.values() if c[0] == source and c[1]]
            if ups:
                columns = [list(v) for v in zip(*[c[2] for c in ups], strict=True)]
                cur.execute(upsert_sql(schema, source), [*columns, [c[3] for c in ups]])
                rows += len(ups)
            if dels:
                cur.execute(
                    f'DELETE FROM "{schema}".{table} WHERE {cols[0][1]} = ANY(%s)',  # noqa: S608
                    ([c[2][0] for c in dels],),
                )
                rows += len(dels)
        cur.execute(
            f'INSERT INTO "{schema}".plain_offsets'  # noqa: S608 - schema is the benchmark's own name
            " SELECT t, 0, o FROM unnest(%s::text[], %s::bigint[]) AS u(t, o)"
            " ON CONFLICT (topic, part) DO UPDATE SET next_offset = EXCLUDED.next_offset",
            (list(offsets), list(offsets.values())),
        )
    return rows


def consumer(bootstrap: str, group: str, topics: dict[str, int]) -> Consumer:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "fetch.max.bytes": 52_428_800,
            "queued.max.messages.kbytes": 262_144,
        }
    )
    c.assign([TopicPartition(t, 0, 0) for t in topics])
    return c


def run(args: dict[str, Any]) -> dict[str, Any]:
    ends: dict[str, int] = args["ends"]
    schema = args["schema"]
    registry = RegistryClient(args["registry"])
    decoder = AvroDecoder(registry)
    with psycopg.connect(args["dsn"]) as conn:
        for stmt in ddl(schema):
            conn.execute(stmt)
        conn.commit()
        c = consumer(args["bootstrap"], args["group"], ends)
        done = {t: 0 for t in ends}
        events = 0
        cpu0: float | None = None  # CPU from the first write on, like the other peers' window
        t0 = time.monotonic()
        while any(done[t] < ends[t] for t in ends):
            msgs = c.consume(BATCH, timeout=1.0)
            changes = []
            for m in msgs:
                if m.error():
                    continue
                at = int(m.offset() or 0)
                done[str(m.topic())] = at + 1
                events += 1
                raw = m.value()
                if raw is None:
                    continue  # tombstone after a delete
                change = to_change(decoder.decode(raw), at)
                if change is not None:
                    changes.append(change)
            if msgs:
                write(conn, schema, changes, dict(done))
                cpu0 = _cpu() if cpu0 is None else cpu0
        elapsed = time.monotonic() - t0
        c.close()
    return {
        "events": events,
        "elapsed_s": elapsed,
        "cpu_s": _cpu() - (cpu0 or 0.0),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
