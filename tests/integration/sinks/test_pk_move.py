"""Primary-key moves with an unchanged TOASTed column, against a real PostgreSQL sink.

``UPDATE … SET id = 1001 WHERE id = 1`` arrives as a delete of 1 (header ``__debezium.newkey``)
and a create of 1001 (``__debezium.oldkey``) at one position, ``bio`` as the placeholder.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from streams.cdc import parse_change_event
from streams.errors import SinkRowError
from streams.sinks import UNAVAILABLE_VALUE, PostgresSink
from tests.integration.sinks.sink_helpers import TOPIC, customers, event, rows

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[Any]
BIO = "ä✓" * 8192  # 16 KiB of UTF-8
MOVE = 500


def sink_for(conninfo: str, schema: str, group: str = "g") -> PostgresSink:
    sink = PostgresSink(conninfo, [customers(schema)], group, control_schema=schema)
    sink.ensure_schema()
    return sink


def insert(sink: PostgresSink) -> None:
    sink.add(0, event("c", {"id": 1, "email": "a", "bio": BIO}, 100, 0))


def delete(sink: PostgresSink) -> None:
    sink.add(0, event("d", {"id": 1, "email": None, "bio": None}, MOVE, 1), new_key={"id": 1001})
    sink.add(0, parse_change_event(None, key={"id": 1}, topic=TOPIC, partition=0, offset=2))


def create(sink: PostgresSink) -> None:
    row = {"id": 1001, "email": "a", "bio": UNAVAILABLE_VALUE}
    sink.add(0, event("c", row, MOVE, 3), old_key={"id": 1})


def test_move_in_one_flush_carries_the_stored_value(sink_conninfo: str, schema: str, db: Conn) -> None:
    sink = sink_for(sink_conninfo, schema)
    insert(sink)
    sink.flush()
    delete(sink)
    create(sink)
    sink.flush()
    assert rows(db, schema, "customer_directory", "id, email, about") == [(1001, "a", BIO)]
    assert rows(db, schema, "customer_directory__cf_deleted", "id") == [(1,)]
    # A replay of the move (another group, same sink): the old key is a tombstone now, the new
    # key's row holds the value from the first application and the guard keeps it.
    replay = sink_for(sink_conninfo, schema, group="replay")
    delete(replay)
    create(replay)
    result = replay.flush()
    assert (result.applied, result.duplicates) == (0, 2)
    assert rows(db, schema, "customer_directory", "id, email, about") == [(1001, "a", BIO)]


def test_move_split_across_two_flushes(sink_conninfo: str, schema: str, db: Conn) -> None:
    sink = sink_for(sink_conninfo, schema)
    insert(sink)
    sink.flush()
    delete(sink)  # a poll ended between the delete and the create
    sink.flush()
    assert rows(db, schema, "customer_directory", "id") == []
    create(sink)
    sink.flush()
    assert rows(db, schema, "customer_directory", "id, email, about") == [(1001, "a", BIO)]


def test_unknown_value_is_dead_lettered_not_written_as_null(
    sink_conninfo: str, schema: str, db: Conn
) -> None:
    sink = sink_for(sink_conninfo, schema)
    insert(sink)
    sink.flush()
    delete(sink)
    sink.flush()
    restarted = sink_for(sink_conninfo, schema)  # the old row's values were in memory only
    restarted.applied_offsets = dict(sink.applied_offsets)
    create(restarted)
    with pytest.raises(SinkRowError, match=r"about .*refusing to insert NULL") as exc:
        restarted.flush()
    assert exc.value.origin.offset == 3
    assert rows(db, schema, "customer_directory", "id") == []  # rolled back: no NULL row
    assert restarted.batch.drop(TOPIC, 0, 3)
    restarted.flush()  # the offset still counts: the worker dead-lettered the record
    assert rows(db, schema, "customer_directory", "id") == []
