"""The PostgreSQL materializer against a real server: convergence, guards, offsets, injection."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg import sql

from streams.errors import PermanentError, SinkRowError, SinkUnavailableError
from streams.sinks import (
    UNAVAILABLE_VALUE,
    AsyncPostgresSink,
    Column,
    PostgresSink,
    TableMapping,
    load_offsets,
)
from tests.integration.sinks.sink_helpers import TOPIC, audit_count, customers, event, regressions, rows

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[Any]


def sink_for(conninfo: str, schema: str, *mappings: TableMapping, group: str = "g") -> PostgresSink:
    sink = PostgresSink(conninfo, mappings or [customers(schema)], group, control_schema=schema)
    sink.ensure_schema(audit=True)
    return sink


def add_all(sink: PostgresSink, *events: Any) -> None:
    for ev in events:
        sink.add(ev.partition, ev)


def test_upsert_update_delete_converge(sink_conninfo: str, schema: str, db: Conn) -> None:
    sink = sink_for(sink_conninfo, schema)
    add_all(
        sink,
        event("c", {"id": 1, "email": "a@x", "bio": "one"}, 100, 0),
        event("c", {"id": 2, "email": "b@x", "bio": "two"}, 110, 1),
    )
    assert sink.flush().applied == 2
    add_all(sink, event("u", {"id": 1, "email": "a2@x", "bio": "one"}, 120, 2), event("d", {"id": 2}, 130, 3))
    result = sink.flush()
    assert (result.applied, result.offsets) == (2, {(TOPIC, 0): 4})
    assert rows(db, schema, "customer_directory", "id, email, about") == [(1, "a2@x", "one")]
    assert rows(db, schema, "customer_directory__cf_deleted", "id") == [(2,)]
    assert regressions(db, schema) == 0


def test_replaying_the_same_batch_changes_zero_rows(sink_conninfo: str, schema: str, db: Conn) -> None:
    batch = [
        event("c", {"id": 1, "email": "a", "bio": "x"}, 100, 0),
        event("u", {"id": 1, "email": "b", "bio": "x"}, 110, 1),
        event("c", {"id": 2, "email": "c", "bio": "y"}, 120, 2),
        event("d", {"id": 2}, 130, 3),
    ]
    first = sink_for(sink_conninfo, schema)
    add_all(first, *batch)
    first.flush()
    before, writes = rows(db, schema, "customer_directory"), audit_count(db, schema)
    # A fresh worker that ignores the stored offsets (e.g. a consumer group reset) replays it all.
    replay = sink_for(sink_conninfo, schema)
    add_all(replay, *batch)
    result = replay.flush()
    assert (result.applied, result.duplicates, result.conflicts) == (0, 2, [])
    assert rows(db, schema, "customer_directory") == before
    assert audit_count(db, schema) == writes  # not one row version written
    # A worker that resumes from the sink's offsets does not even send them.
    resumed = sink_for(sink_conninfo, schema)
    assert resumed.assign(TOPIC, [0, 1]) == {0: 4}
    add_all(resumed, *batch)
    assert resumed.counts["replayed"] == 4
    assert resumed.batch.writes == []


def test_stale_event_is_discarded_and_ledgered(sink_conninfo: str, schema: str, db: Conn) -> None:
    sink = sink_for(sink_conninfo, schema)
    add_all(sink, event("u", {"id": 1, "email": "new", "bio": "x"}, 200, 0))
    sink.flush()
    add_all(sink, event("u", {"id": 1, "email": "old", "bio": "x"}, 150, 1))
    result = sink.flush()
    assert (result.applied, result.stale) == (0, 1)
    assert rows(db, schema, "customer_directory", "email") == [("new",)]
    ledger = rows(db, schema, "changefeed_conflicts", "kafka_offset, reason, policy, row_key")
    assert ledger == [(1, "stale", "discard_stale", {"id": 1})]
    assert load_offsets(db, "g", TOPIC, schema) == {0: 2}  # the stale event is consumed, not retried
    assert regressions(db, schema) == 0


@pytest.mark.parametrize("policy", ["hard", "soft"])
def test_late_upsert_after_delete_does_not_resurrect(
    sink_conninfo: str, schema: str, db: Conn, policy: str
) -> None:
    sink = sink_for(sink_conninfo, schema, customers(schema, delete_policy=policy))
    add_all(sink, event("c", {"id": 1, "email": "a", "bio": "x"}, 100, 0), event("d", {"id": 1}, 120, 1))
    sink.flush()
    add_all(sink, event("u", {"id": 1, "email": "zombie", "bio": "x"}, 110, 2))
    result = sink.flush()
    assert result.stale == 1
    live = rows(db, schema, "customer_directory", "id, email, _cf_deleted_at IS NOT NULL")
    assert live == ([] if policy == "hard" else [(1, "a", True)])
    # A genuinely newer insert (the key reused later) does come back.
    add_all(sink, event("c", {"id": 1, "email": "reborn", "bio": "y"}, 130, 3))
    assert sink.flush().applied == 1
    assert rows(db, schema, "customer_directory", "email, _cf_deleted_at") == [("reborn", None)]
    assert regressions(db, schema) == 0


def test_toast_placeholder_keeps_the_stored_column(sink_conninfo: str, schema: str, db: Conn) -> None:
    large = "L" * 16384
    sink = sink_for(sink_conninfo, schema)
    add_all(sink, event("c", {"id": 1, "email": "a", "bio": large}, 100, 0))
    sink.flush()
    add_all(sink, event("u", {"id": 1, "email": "b", "bio": UNAVAILABLE_VALUE}, 110, 1))
    sink.flush()
    assert rows(db, schema, "customer_directory", "email, about") == [("b", large)]
    # Insert and placeholder update in one batch: the large value still survives.
    add_all(
        sink,
        event("c", {"id": 2, "email": "c", "bio": large}, 120, 2),
        event("u", {"id": 2, "email": "d", "bio": UNAVAILABLE_VALUE}, 130, 3),
    )
    sink.flush()
    assert rows(
        db,
        schema,
        "customer_directory",
        "count(*) FILTER (WHERE about = %s)".replace("%s", "'" + large + "'"),
    ) == [(2,)]
    assert rows(db, schema, "customer_directory", "count(*) FILTER (WHERE about LIKE '__debezium%')") == [
        (0,)
    ]


def test_failure_mid_flush_leaves_neither_rows_nor_offsets(sink_conninfo: str, schema: str, db: Conn) -> None:
    sink = sink_for(sink_conninfo, schema)
    # The offsets upsert is the last statement of a flush; make it fail retryably once.
    db.execute(
        sql.SQL(
            "CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'injected' USING ERRCODE = '40001'; END $$;"
            " CREATE TRIGGER fail BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {fn}()"
        ).format(fn=sql.Identifier(schema, "fail_once"), t=sql.Identifier(schema, "changefeed_offsets"))
    )
    add_all(sink, event("c", {"id": 1, "email": "a", "bio": "x"}, 100, 0))
    with pytest.raises(SinkUnavailableError):
        sink.flush()
    assert rows(db, schema, "customer_directory") == []
    assert load_offsets(db, "g", TOPIC, schema) == {}
    db.execute(sql.SQL("DROP TRIGGER fail ON {}").format(sql.Identifier(schema, "changefeed_offsets")))
    result = sink.flush()  # the batch survived the failure; retry commits rows and offsets together
    assert result.applied == 1
    assert rows(db, schema, "customer_directory", "id") == [(1,)]
    assert load_offsets(db, "g", TOPIC, schema) == {0: 1}


def test_bad_row_is_identified_then_dropped(sink_conninfo: str, schema: str, db: Conn) -> None:
    scores = TableMapping(
        "public.customers",
        "scores",
        [Column("id", type="bigint"), Column("email", type="smallint")],
        key=["id"],
        sink_schema=schema,
    )
    sink = sink_for(sink_conninfo, schema, scores)
    add_all(
        sink,
        event("c", {"id": 1, "email": 5}, 100, 0),
        event("c", {"id": 2, "email": 99999}, 110, 1),  # out of smallint range: 22003
    )
    with pytest.raises(SinkRowError) as info:
        sink.flush()
    assert isinstance(info.value, PermanentError)
    assert (info.value.origin.offset, info.value.key, info.value.sqlstate) == (1, (2,), "22003")
    assert rows(db, schema, "scores") == []
    bad = next(w.event for w in sink.batch.writes if w.event.offset == 1)
    assert sink.drop(bad.topic, bad.partition, bad.offset)  # dead-lettered by the agent
    assert sink.flush().applied == 1
    assert load_offsets(db, "g", TOPIC, schema) == {0: 2}


def test_injection_shaped_names_and_values_are_stored_byte_exact(
    sink_conninfo: str, schema: str, db: Conn
) -> None:
    db.execute(sql.SQL("CREATE TABLE {} (alive int)").format(sql.Identifier(schema, "canary")))
    evil = "x; DROP TABLE canary; --"
    mapping = TableMapping(
        "public.customers",
        evil,
        [Column("id", "Id", "text"), Column("email", 'E"mail ünï', "text"), Column("bio", "Bio", "bytea")],
        key=["Id"],
        sink_schema=schema,
    )
    sink = sink_for(sink_conninfo, schema, mapping)
    values = [
        ("'; DROP TABLE canary; --", "Robert'); DROP TABLE canary;--", bytes(range(1, 256))),
        ('"quoted" \\ back', "ünïcödé 🚀 " + "m" * 1_000_000, b"\x01\x02"),
        ("MiXeD", "$$ $x$ %s %(x)s {}", b"x" * 1000),
    ]
    add_all(
        sink, *(event("c", {"id": i, "email": e, "bio": b}, 100 + n, n) for n, (i, e, b) in enumerate(values))
    )
    assert sink.flush().applied == 3
    stored = rows(db, schema, evil, '"Id", "E""mail ünï", "Bio"')
    assert sorted(stored) == sorted((i, e, b) for i, e, b in values)
    assert rows(db, schema, "canary") == []  # still there
    assert regressions(db, schema) == 0


def test_last_writer_wins_applies_older_writes_and_ledgers_them(
    sink_conninfo: str, schema: str, db: Conn
) -> None:
    sink = sink_for(sink_conninfo, schema, customers(schema, conflict_policy="last_writer_wins"))
    add_all(sink, event("u", {"id": 1, "email": "new", "bio": "x"}, 200, 0))
    sink.flush()
    add_all(sink, event("u", {"id": 1, "email": "old", "bio": "x"}, 150, 1))
    result = sink.flush()
    assert result.applied == 1
    assert [c.reason for c in result.conflicts] == ["overwrote_newer"]
    assert rows(db, schema, "customer_directory", "email") == [("old",)]
    assert rows(db, schema, "changefeed_conflicts", "reason") == [("overwrote_newer",)]


async def test_async_sink_commits_rows_and_offsets(sink_conninfo: str, schema: str, db: Conn) -> None:
    sink = AsyncPostgresSink(sink_conninfo, [customers(schema)], "g", control_schema=schema)
    await sink.ensure_schema()
    assert await sink.assign(TOPIC, [0]) == {}
    sink.add(0, event("c", {"id": 1, "email": "a", "bio": "x"}, 100, 0))
    sink.add(0, event("u", {"id": 1, "email": "stale", "bio": "x"}, 90, 1))
    result = await sink.flush()
    await sink.close()
    assert (result.applied, result.superseded) == (1, 1)
    assert rows(db, schema, "customer_directory", "email") == [("a",)]
    assert load_offsets(db, "g", TOPIC, schema) == {0: 2}


async def test_offset_load_during_a_flush_does_not_nest_in_its_transaction(
    sink_conninfo: str, schema: str, db: Conn
) -> None:
    """A rebalance loads offsets while a flush's transaction is open on the sink's connection:
    the load must not open its transaction on that same connection (the flush commits first, out
    of nesting order: psycopg's OutOfOrderTransactionNesting, which failed the flush or the load)."""
    sink = AsyncPostgresSink(sink_conninfo, [customers(schema)], "g", control_schema=schema)
    await sink.ensure_schema()
    sink.add(0, event("c", {"id": 1, "email": "a", "bio": "x"}, 100, 4))
    await sink.flush()
    conn = await sink.connection()
    started = asyncio.Event()

    async def flush_in_flight() -> None:
        async with conn.transaction():
            started.set()
            await conn.execute("SELECT pg_sleep(0.3)")

    try:
        flushing = asyncio.create_task(flush_in_flight())
        await started.wait()
        assert await sink.assign(TOPIC, [0]) == {0: 5}
        await flushing
    finally:
        await sink.close()
    assert sink.applied_offsets[(TOPIC, 0)] == 5
