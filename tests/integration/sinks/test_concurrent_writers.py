"""Two writers of one partition at once (a zombie and the new owner): a newer delete must win.

Deterministic: the new owner's delete is executed and held uncommitted while the zombie flushes
an older upsert of the same key. Before flushes took a per-partition lock, the upsert's tombstone
check read its snapshot from before the delete committed and the row came back (K6 found it).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from streams.sinks import FlushResult, PostgresSink
from streams.sinks.flush import flush_steps
from tests.integration.sinks.sink_helpers import customers, drive, event, regressions, rows

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[Any]


def _waiting_on_a_lock(db: Conn) -> bool:
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND wait_event_type = 'Lock'"
    ).fetchone()
    return bool(row and row[0])


def test_an_older_upsert_racing_a_newer_delete_cannot_resurrect_the_row(
    sink_conninfo: str, schema: str, db: Conn
) -> None:
    mapping = customers(schema)
    first = PostgresSink(sink_conninfo, [mapping], "g", control_schema=schema)
    first.ensure_schema(audit=True)
    first.add(0, event("c", {"id": 1, "email": "a@x", "bio": ""}, 100, 0))
    first.flush()

    owner = PostgresSink(sink_conninfo, [mapping], "g", control_schema=schema)
    owner.add(0, event("d", {"id": 1}, 300, 2))
    zombie = PostgresSink(sink_conninfo, [mapping], "g", control_schema=schema)
    zombie.add(0, event("u", {"id": 1, "email": "late@x", "bio": ""}, 200, 1))
    outcome: list[FlushResult | BaseException] = []

    def zombie_flush() -> None:
        try:
            outcome.append(zombie.flush())
        except BaseException as exc:  # surfaced below
            outcome.append(exc)

    with psycopg.connect(sink_conninfo) as conn, conn.transaction(), conn.cursor() as cur:
        drive(cur, flush_steps(owner.batch, "g", schema))  # the delete, not committed yet
        racer = threading.Thread(target=zombie_flush, daemon=True)
        racer.start()
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock(db) and racer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling pg_stat_activity until the zombie waits on the owner
        assert racer.is_alive(), f"the zombie's flush did not wait for the owner's: {outcome}"
    racer.join(30)
    assert not racer.is_alive()
    assert isinstance(outcome[0], FlushResult), outcome
    assert outcome[0].applied == 0
    assert rows(db, schema, "customer_directory") == []
    assert [r[0] for r in rows(db, schema, "customer_directory__cf_deleted", "id")] == [1]
    assert regressions(db, schema) == 0
