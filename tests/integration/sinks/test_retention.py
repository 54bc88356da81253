"""Pruning tombstones and the conflict ledger on a real PostgreSQL: only what is old enough goes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from streams.sinks import PostgresSink, retention
from streams.sinks.retention import prune_conflicts, prune_tombstones
from tests.integration.sinks.sink_helpers import customers, event, rows

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[Any]
TOMBSTONES = "customer_directory__cf_deleted"


def _age(db: Conn, schema: str, table: str, column: str, ids: list[int], by: timedelta) -> None:
    db.execute(
        sql.SQL("UPDATE {t} SET {c} = now() - %s WHERE {k} = ANY(%s)").format(
            t=sql.Identifier(schema, table),
            c=sql.Identifier(column),
            k=sql.Identifier("id"),
        ),
        [by, ids],
    )


def test_only_tombstones_older_than_the_cutoff_are_pruned_in_batches(
    sink_conninfo: str, schema: str, db: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = customers(schema)
    sink = PostgresSink(sink_conninfo, [mapping], "g", control_schema=schema)
    sink.ensure_schema()
    for i in range(1, 8):
        sink.add(0, event("c", {"id": i, "email": f"{i}@x", "bio": ""}, 100 + i, i))
        sink.add(0, event("d", {"id": i}, 200 + i, 100 + i))
    sink.flush()
    # Five deletes committed 10 days ago, two an hour ago.
    _age(db, schema, TOMBSTONES, "_cf_deleted_at", [1, 2, 3, 4, 5], timedelta(days=10))
    _age(db, schema, TOMBSTONES, "_cf_deleted_at", [6, 7], timedelta(hours=1))
    monkeypatch.setattr(retention, "BATCH_ROWS", 2)  # five rows: three batches
    seen: list[int] = []

    with psycopg.connect(sink_conninfo) as conn:
        dry = prune_tombstones(conn, [mapping], timedelta(days=7), dry_run=True)
        assert dry == {f"{schema}.{TOMBSTONES}": 5}
        assert len(rows(db, schema, TOMBSTONES)) == 7
        done = prune_tombstones(conn, [mapping], timedelta(days=7), progress=lambda _t, n: seen.append(n))
    assert done == {f"{schema}.{TOMBSTONES}": 5}
    assert seen == [2, 4, 5]
    assert [r[0] for r in rows(db, schema, TOMBSTONES, "id")] == [6, 7]
    # What remains still guards: a late upsert older than its delete is refused.
    sink.add(0, event("u", {"id": 6, "email": "zombie@x", "bio": ""}, 150, 200))
    assert sink.flush().applied == 0
    assert rows(db, schema, "customer_directory") == []


def test_only_old_conflict_ledger_entries_are_pruned(sink_conninfo: str, schema: str, db: Conn) -> None:
    mapping = customers(schema)
    sink = PostgresSink(sink_conninfo, [mapping], "g", control_schema=schema)
    sink.ensure_schema()
    sink.add(0, event("c", {"id": 1, "email": "new@x", "bio": ""}, 300, 0))
    sink.flush()
    for offset, lsn in enumerate([100, 110, 120], start=1):  # three stale writes: three entries
        sink.add(0, event("u", {"id": 1, "email": f"old{lsn}@x", "bio": ""}, lsn, offset))
        sink.flush()
    ledger = rows(db, schema, "changefeed_conflicts", "id")
    assert len(ledger) == 3
    _age(db, schema, "changefeed_conflicts", "at", [ledger[0][0]], timedelta(days=40))
    with psycopg.connect(sink_conninfo) as conn:
        assert prune_conflicts(conn, schema, timedelta(days=30), dry_run=True) == 1
        assert prune_conflicts(conn, schema, timedelta(days=30)) == 1
        assert prune_conflicts(conn, schema, timedelta(days=30)) == 0
    assert rows(db, schema, "changefeed_conflicts", "id") == ledger[1:]
