"""SQL generation: identifiers quoted by the driver, values only as bound parameters."""

from __future__ import annotations

import dataclasses

import psycopg
import psycopg.errors as pg_errors
import pytest

from streams.errors import SinkSchemaError, SinkUnavailableError
from streams.sinks import Column, Failure, TableMapping, classify, control_tables_ddl, materialized_table_ddl
from streams.sinks.batch import Batch, to_write
from streams.sinks.classify import unavailable
from streams.sinks.flush import SinkCore, flush_locks, flush_steps, partition_lock_keys
from streams.sinks.statements import hard_delete_sql, upsert_sql, upsert_values_sql
from tests.unit.sinks.sink_events import pg_event

EVIL = TableMapping(
    "public.x",
    "x; DROP TABLE canary; --",
    [Column("id", "Id", "bigint"), Column("v", 'va"l ünï')],
    key=["Id"],
    sink_schema='Sch"ema',
)


def render(q: psycopg.sql.Composable) -> str:
    return q.as_string(None)


def test_injection_shaped_names_are_quoted_identifiers() -> None:
    text = render(upsert_sql(EVIL))
    assert '"Sch""ema"."x; DROP TABLE canary; --"' in text
    assert '"va""l ünï" = EXCLUDED."va""l ünï"' in text
    assert '"Sch""ema"."x; DROP TABLE canary; --__cf_deleted"' in text
    assert "%b::bigint[]" in text
    assert 'canary; --"' in text
    assert "DROP TABLE canary; --\n" not in text


def test_upsert_is_position_guarded_and_kept_columns_are_not_set() -> None:
    text = render(upsert_sql(EVIL, frozenset({'va"l ünï'})))
    assert 'WHERE t."_cf_position" < EXCLUDED."_cf_position"' in text
    assert '"va""l ünï" = EXCLUDED' not in text
    assert render(hard_delete_sql(EVIL)).count('"_cf_position" <') >= 2


def test_last_writer_wins_only_skips_exact_duplicates() -> None:
    lww = TableMapping("public.x", "y", [Column("id")], key=["id"], conflict_policy="last_writer_wins")
    assert 't."_cf_position" <> EXCLUDED."_cf_position"' in render(upsert_sql(lww))
    assert '<> EXCLUDED."_cf_position"' in render(upsert_values_sql(lww))


def test_ddl_carries_position_and_tombstone_table() -> None:
    first, tomb = (render(s) for s in materialized_table_ddl(EVIL))
    assert '"_cf_position" bytea NOT NULL' in first
    assert 'PRIMARY KEY ("Id")' in first
    assert '"x; DROP TABLE canary; --__cf_deleted"' in tomb
    soft = TableMapping("public.x", "y", [Column("id")], key=["id"], delete_policy="soft")
    assert len(materialized_table_ddl(soft)) == 1
    assert "changefeed_offsets" in render(control_tables_ddl("cf")[0])


def test_flush_plan_locks_partitions_first_binds_values_and_ends_with_ledger_then_offsets(
    customers: TableMapping,
) -> None:
    b = Batch()
    for ev in (
        pg_event("c", {"id": 1, "email": "'; DROP TABLE canary; --", "bio": "x"}, 100, offset=0),
        pg_event("d", {"id": 2}, 110, offset=1),
    ):
        b.writes.append(to_write(customers, ev))
        b.mark(ev.topic, 0, ev.offset)
    steps = flush_steps(b, "g", "public")
    lock = next(steps)
    assert "pg_advisory_xact_lock" in render(lock.query)
    assert lock.params == [["changefeed\x1fpublic\x1fcf.public.customers\x1f0"], [False]]
    first = steps.send([])
    assert "DROP TABLE" not in render(first.query)
    assert ["'; DROP TABLE canary; --"] in first.params
    second = steps.send([(1,)])  # the upsert wrote ordinal 1
    assert "DELETE FROM" in render(second.query)
    lookup = steps.send([])  # the delete wrote nothing: ask for the stored position
    assert "GREATEST" in render(lookup.query)
    assert lookup.params == [[2]]
    pos = b.writes[1].position
    ledger = steps.send([(1, pos[:-1] + b"\xff")])  # a newer tombstone/row is stored
    assert "changefeed_conflicts" in render(ledger.query)
    offsets = steps.send([])
    assert "changefeed_offsets" in render(offsets.query)
    assert offsets.params[0] == "g"
    with pytest.raises(StopIteration) as done:
        steps.send([])
    result = done.value.value
    assert (result.applied, result.stale, result.offsets) == (1, 1, {("cf.public.customers", 0): 2})


def test_partition_lock_keys_are_sorted_and_scoped_by_schema() -> None:
    keys = partition_lock_keys("s", [("t", 2), ("a", 9), ("t", 10)])
    assert keys == sorted(keys)
    assert len(set(keys)) == 3
    assert partition_lock_keys("other", [("t", 2)]) != partition_lock_keys("s", [("t", 2)])


def test_core_skips_replays_tombstones_truncates_and_unmapped(customers: TableMapping) -> None:
    core = SinkCore([customers], "g")
    core.applied_offsets[("cf.public.customers", 0)] = 5
    core.add(0, pg_event("c", {"id": 1, "email": "a", "bio": "b"}, 100, offset=4))
    core.add(0, pg_event("c", {"id": 1, "email": "a", "bio": "b"}, 100, offset=5))
    core.add(0, pg_event("c", {"id": 9}, 100, offset=6, table="unmapped"))
    core.add(0, pg_event("t", None, 120, offset=7))
    assert core.counts == {"unmapped": 1, "replayed": 1, "tombstones": 0, "truncates": 1}
    assert len(core.batch.writes) == 1
    assert core.batch.next_offsets == {("cf.public.customers", 0): 8}


@pytest.mark.parametrize(
    ("exc", "failure", "raised"),
    [
        (pg_errors.SerializationFailure(), Failure.TRANSIENT, SinkUnavailableError),
        (pg_errors.DeadlockDetected(), Failure.TRANSIENT, SinkUnavailableError),
        (pg_errors.AdminShutdown(), Failure.TRANSIENT, SinkUnavailableError),
        (psycopg.OperationalError("connection refused"), Failure.TRANSIENT, SinkUnavailableError),
        (pg_errors.UndefinedTable(), Failure.SCHEMA, SinkSchemaError),
        (pg_errors.NumericValueOutOfRange(), Failure.ROW, SinkUnavailableError),
        (pg_errors.NotNullViolation(), Failure.ROW, SinkUnavailableError),
    ],
)
def test_classification_by_sqlstate(exc: psycopg.Error, failure: Failure, raised: type[Exception]) -> None:
    assert classify(exc) is failure
    assert isinstance(unavailable(exc, "flush"), raised)


def test_classification_ignores_message_text() -> None:
    assert classify(psycopg.OperationalError("invalid input syntax for type integer")) is Failure.TRANSIENT


def test_lookup_lock_is_shared_only_for_flushes_that_write_just_the_looked_up_table(
    customers: TableMapping,
) -> None:
    target = dataclasses.replace(customers, sink_table="order_view")  # a table looking customers up
    b = Batch()
    ev = pg_event("c", {"id": 1, "email": "a@b", "bio": "x"}, 100, offset=0)
    b.writes.append(to_write(customers, ev))
    b.mark(ev.topic, 0, ev.offset)
    lookup_key = "changefeed\x1fpublic\x1flookup\x1forder_view"
    partition_key = "changefeed\x1fpublic\x1fcf.public.customers\x1f0"
    # Only the looked-up table: shared, so two workers on its partitions flush side by side.
    assert flush_locks(b, "public", [], [target]) == sorted([(partition_key, False), (lookup_key, True)])
    # A truncate or reconcile touches every key: exclusive.
    assert (lookup_key, False) in flush_locks(b, "public", [], [target], exclusive=True)
    # Writing the target itself: exclusive, so it never interleaves with a looked-up table's flush.
    b.writes.append(to_write(target, pg_event("c", {"id": 7, "email": "c@d", "bio": "y"}, 101, offset=1)))
    assert (lookup_key, False) in flush_locks(b, "public", [], [target])
