"""Event builders and oracles for the sink integration tests (a uniquely named module)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from streams.cdc import ChangeEvent, parse_change_event
from streams.sinks import Column, TableMapping

TOPIC = "cf.public.customers"


def event(op: str, row: dict[str, Any], lsn: int, offset: int, *, table: str = "customers") -> ChangeEvent:
    value = {
        "op": op,
        "before": row if op == "d" else None,
        "after": None if op == "d" else row,
        "source": {
            "connector": "postgresql",
            "schema": "public",
            "table": table,
            "sequence": json.dumps([str(lsn - 1), str(lsn)]),
            "txId": lsn // 10,
            "ts_ms": 1_700_000_000_000 + lsn,
        },
        "ts_ms": 1_700_000_000_000 + lsn,
    }
    return parse_change_event(value, topic=TOPIC, partition=0, offset=offset)


def customers(schema: str, **kw: Any) -> TableMapping:
    cols = [Column("id", type="bigint"), Column("email"), Column("bio", "about")]
    return TableMapping("public.customers", "customer_directory", cols, key=["id"], sink_schema=schema, **kw)


def rows(db: psycopg.Connection[Any], schema: str, table: str, cols: str = "*") -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT " + cols + " FROM {} ORDER BY 1").format(sql.Identifier(schema, table))
    return db.execute(query).fetchall()


def regressions(db: psycopg.Connection[Any], schema: str) -> int:
    """Rows whose position ever moved backwards (table and tombstone share one logical key)."""
    query = sql.SQL(
        "SELECT count(*) FROM (SELECT new_position, lag(new_position) OVER"
        " (PARTITION BY sink_table, row_key ORDER BY id) AS prev FROM {}"
        " WHERE new_position IS NOT NULL) s WHERE prev >= new_position"
    ).format(sql.Identifier(schema, "changefeed_audit"))
    row = db.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def audit_count(db: psycopg.Connection[Any], schema: str) -> int:
    row = db.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "changefeed_audit"))
    ).fetchone()
    assert row is not None
    return int(row[0])


def drive(cur: psycopg.Cursor[Any], steps: Any) -> Any:
    """Run a flush plan on ``cur`` inside the caller's open transaction (to hold it uncommitted)."""
    try:
        step = next(steps)
        while True:
            cur.execute(step.query, step.params)
            step = steps.send(cur.fetchall() if step.fetch else [])
    except StopIteration as done:
        return done.value
