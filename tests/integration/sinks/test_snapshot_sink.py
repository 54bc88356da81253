"""Snapshot records against a real sink: reconcile per delete policy, and T* after a restart.

Positions here come from Debezium-shaped sources (``[null, S]`` snapshot records); the full
pipeline with real connectors is ``tests/integration/streams/test_resnapshot.py``.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from streams.cdc import ChangeEvent, parse_change_event
from streams.sinks import PostgresSink
from streams.sinks.mapping import DeletePolicy
from tests.integration.sinks.sink_helpers import TOPIC, customers, regressions, rows

pytestmark = pytest.mark.integration
S = 5000


def pg(cid: int, seq: list[int | None], snapshot: str, offset: int, tx: int) -> ChangeEvent:
    source = {"connector": "postgresql", "name": "cf", "schema": "public", "table": "customers",
              "sequence": json.dumps([None if s is None else str(s) for s in seq]), "txId": tx,
              "snapshot": snapshot}  # fmt: skip
    after = {"id": cid, "email": f"{cid}-{tx}@x", "bio": None}
    value = {"op": "r" if snapshot != "false" else "u", "before": None, "after": after, "source": source}
    return parse_change_event(value, topic=TOPIC, partition=0, offset=offset)


def sink(conninfo: str, schema: str, policy: DeletePolicy) -> PostgresSink:
    s = PostgresSink(conninfo, [customers(schema, delete_policy=policy)], "g", control_schema=schema)
    s.ensure_schema(audit=True)
    return s


@pytest.mark.parametrize("policy", list(DeletePolicy))
def test_completed_snapshot_removes_rows_it_did_not_contain_and_a_restart_places_t_star(
    sink_conninfo: str, schema: str, db: psycopg.Connection[Any], policy: DeletePolicy
) -> None:
    first = sink(sink_conninfo, schema, policy)
    for cid in range(1, 6):  # streamed before the gap
        first.add(0, pg(cid, [100 + cid, 110 + cid], "false", cid, tx=10 + cid))
    first.flush()
    # Re-snapshot: keys 4 and 5 were deleted in the gap, so it holds 1..3 only.
    for i, (cid, marker) in enumerate([(1, "first"), (2, "true"), (3, "last")]):
        first.add(0, pg(cid, [None, S], marker, 10 + i, tx=900))
    result = first.flush()
    first.close()
    assert result.reconciled == 2
    assert result.conflicts == []  # every snapshot row was newer than the streamed one it replaced

    restarted = sink(sink_conninfo, schema, policy)  # a new process: S only in the sink
    restarted.add(0, pg(2, [None, S - 300], "false", 20, tx=899))  # wrote below S, committed after
    assert restarted.flush().conflicts == []
    restarted.close()

    live = "WHERE _cf_deleted_at IS NULL" if policy is DeletePolicy.SOFT else ""
    kept = db.execute(f'SELECT id, email FROM "{schema}".customer_directory {live} ORDER BY 1').fetchall()
    assert kept == [(1, "1-900@x"), (2, "2-899@x"), (3, "3-900@x")]
    ledger = db.execute(f'SELECT reason, row_key FROM "{schema}".changefeed_conflicts ORDER BY 2').fetchall()
    assert ledger == [("snapshot_absent", {"id": 4}), ("snapshot_absent", {"id": 5})]
    if policy is DeletePolicy.HARD:
        assert [r[0] for r in rows(db, schema, "customer_directory__cf_deleted")] == [4, 5]
    assert regressions(db, schema) == 0
