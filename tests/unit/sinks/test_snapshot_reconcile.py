"""Snapshot bookkeeping in the sink: T*'s position and the reconcile step of a completed snapshot."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from streams.cdc import ChangeEvent, SourceKind, SourcePosition, parse_change_event
from streams.sinks import FlushResult, TableMapping
from streams.sinks.flush import SinkCore, flush_steps
from streams.sinks.mapping import DeletePolicy
from streams.sinks.reconcile import ABSENT, SKIPPED, reconcile_sql

TOPIC = "cf.public.customers"


def render(q: psycopg.sql.Composable) -> str:
    return q.as_string(None)


def event(
    cid: int, seq: list[str | None], snapshot: str, offset: int, tx: int = 7, op: str = "r"
) -> ChangeEvent:
    source = {"connector": "postgresql", "name": "cf", "schema": "public", "table": "customers",
              "sequence": json.dumps(seq), "txId": tx, "snapshot": snapshot}  # fmt: skip
    value = {"op": op, "before": None, "after": {"id": cid, "email": f"{cid}@x"}, "source": source}
    return parse_change_event(value, topic=TOPIC, partition=0, offset=offset)


def snapshot_then(core: SinkCore) -> None:
    for i, marker in enumerate(("first", "true", "last")):
        core.add(0, event(i + 1, [None, "5000"], marker, i, tx=900))


def steps_until(plan: Any, needle: str) -> tuple[Any, list[Any]]:
    """Drive a flush plan answering every query as the happy path would, until ``needle``."""
    seen, answer = [], []
    while True:
        step = plan.send(answer) if seen else next(plan)
        seen.append(step)
        text = render(step.query)
        if needle in text:
            return step, seen
        answer = (
            [(1,)] if "INSERT INTO" in text and "RETURNING" in text else [(0,)] if "count(*)" in text else []
        )


def test_last_snapshot_record_requests_a_reconcile_at_the_snapshot_point(customers: TableMapping) -> None:
    core = SinkCore([customers], "g")
    snapshot_then(core)
    (req,) = core.batch.reconciles
    assert SourcePosition.from_bytes(req.floor).parts == (5000, 0, 0)
    assert (req.topic, req.partition, req.offset) == (TOPIC, 0, 2)
    step, _ = steps_until(flush_steps(core.batch, "g", "public"), ABSENT)
    assert step.params["floor"] == req.floor
    assert "DELETE FROM" in render(step.query)
    assert "customer_directory__cf_deleted" in render(step.query)


def test_incremental_and_streamed_records_request_no_reconcile(customers: TableMapping) -> None:
    core = SinkCore([customers], "g")
    core.add(0, event(1, ["6000", "6000"], "incremental", 0))
    core.add(0, event(2, ["6000", "6100"], "false", 1, op="u"))
    assert core.batch.reconciles == []


def test_reconcile_is_skipped_and_ledgered_when_the_topic_has_other_partitions(
    customers: TableMapping,
) -> None:
    core = SinkCore([customers], "g")
    snapshot_then(core)
    plan = flush_steps(core.batch, "g", "public")
    step, _ = steps_until(plan, "partition <> %s")
    assert step.params == ["g", TOPIC, 0]
    skipped = plan.send([(1,)])  # another partition of the topic has stored offsets
    assert SKIPPED in render(skipped.query)


def test_first_transaction_after_the_snapshot_gets_the_snapshot_point(customers: TableMapping) -> None:
    core = SinkCore([customers], "g")
    snapshot_then(core)
    core.add(0, event(1, [None, "4900"], "false", 3, tx=899, op="u"))  # began before S
    straddle = core.batch.writes[-1].position
    assert SourcePosition.from_bytes(straddle).parts == (5000, 4900, 899)
    assert max(w.position for w in core.batch.writes[:3]) < straddle


@pytest.mark.parametrize("policy", list(DeletePolicy))
def test_reconcile_sql_quotes_names_and_binds_values(customers: TableMapping, policy: DeletePolicy) -> None:
    m = TableMapping("public.x", 'x"; DROP', customers.columns, key=["id"], delete_policy=policy)
    text = render(reconcile_sql(m, "ctl"))
    assert '"x""; DROP"' in text
    assert '"ctl"."changefeed_conflicts"' in text
    assert "%(floor)s" in text
    assert ("DELETE FROM" in text) is (policy is DeletePolicy.HARD)


def test_a_restarted_sink_places_the_first_transaction_by_the_stored_snapshot_point(
    customers: TableMapping,
) -> None:
    first = SinkCore([customers], "g")
    snapshot_then(first)
    stored, _ = steps_until(flush_steps(first.batch, "g", "public"), "changefeed_snapshot_points")
    assert stored.params == [["cf"], [SourcePosition(SourceKind.POSTGRES, (5000, 0, 0)).to_bytes()]]

    restarted = SinkCore([customers], "g")  # has not seen the snapshot's records
    restarted.add(0, event(1, [None, "4900"], "false", 3, tx=899, op="u"))
    plan = flush_steps(restarted.batch, "g", "public")
    next(plan)  # the partition lock
    lookup = plan.send([])
    assert "changefeed_snapshot_points" in render(lookup.query)
    assert lookup.params == [["cf"]]
    upsert = plan.send([("cf", stored.params[1][0])])
    placed = SourcePosition(SourceKind.POSTGRES, (5000, 4900, 899)).to_bytes()
    assert [placed] in upsert.params


def test_a_newer_snapshot_point_in_the_sink_beats_an_older_one_in_memory(customers: TableMapping) -> None:
    core = SinkCore([customers], "g")
    snapshot_then(core)  # this process saw the snapshot at 5000 ...
    core.committed(FlushResult())
    core.add(0, event(1, [None, "5900"], "false", 3, tx=950, op="u"))  # ... another worker one at 6000
    plan = flush_steps(core.batch, "g", "public")
    next(plan)
    lookup = plan.send([])
    newer = SourcePosition(SourceKind.POSTGRES, (6000, 0, 0)).to_bytes()
    upsert = plan.send([("cf", newer)])
    assert [SourcePosition(SourceKind.POSTGRES, (6000, 5900, 950)).to_bytes()] in upsert.params
    assert "changefeed_snapshot_points" in render(lookup.query)
