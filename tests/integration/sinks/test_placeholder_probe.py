"""Every poison row of a flush attempt is named at once (real PostgreSQL).

Placeholder rows with no stored row: the same ones whether the sink finds them after the upsert
or, while they flow, with a read before it. Not poison: a placeholder update of a stored row (the
stored value stays), or of a key whose newer tombstone refuses the write (a stale update after a
hard delete). Rows PostgreSQL itself rejects: all of them in one isolation pass.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from streams.errors import SinkRowErrors
from streams.sinks import UNAVAILABLE_VALUE, Column, PostgresSink, TableMapping
from tests.integration.sinks.sink_helpers import TOPIC, customers, event, rows

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[Any]
BIO = "b" * 4096


def placeholder(cid: int, lsn: int, offset: int) -> Any:
    return event("u", {"id": cid, "email": f"e{lsn}", "bio": UNAVAILABLE_VALUE}, lsn, offset)


def add_batch(sink: PostgresSink, lsn: int, offset: int, fresh: tuple[int, int], good: int) -> dict[int, int]:
    """A stored row's and a deleted key's placeholder updates, two for keys never seen, a good
    insert; the offsets of the two that must be refused."""
    sink.add(0, placeholder(1, lsn, offset))  # row 1 is stored: keeps its bio
    sink.add(0, placeholder(2, lsn + 1, offset + 1))  # older than key 2's tombstone: refused
    sink.add(0, placeholder(fresh[0], lsn + 2, offset + 2))
    sink.add(0, placeholder(fresh[1], lsn + 3, offset + 3))
    sink.add(0, event("c", {"id": good, "email": "g", "bio": BIO}, lsn + 4, offset + 4))
    return {offset + 2: fresh[0], offset + 3: fresh[1]}


def refused(sink: PostgresSink) -> SinkRowErrors:
    with pytest.raises(SinkRowErrors) as exc:
        sink.flush()
    return exc.value


def test_every_placeholder_insert_is_named_in_one_attempt_and_the_probe_names_the_same(
    sink_conninfo: str, schema: str, db: Conn
) -> None:
    sink = PostgresSink(sink_conninfo, [customers(schema)], "g", control_schema=schema)
    sink.ensure_schema()
    sink.add(0, event("c", {"id": 1, "email": "a", "bio": BIO}, 100, 0))
    sink.add(0, event("c", {"id": 2, "email": "a", "bio": BIO}, 101, 1))
    sink.add(0, event("d", {"id": 2, "email": None, "bio": None}, 5000, 2))  # tombstone at 5000
    sink.flush()

    bad = add_batch(sink, 1000, 3, (3, 4), 5)
    assert sink.probe.left == 0  # no placeholder refused yet: no read before the upsert
    first = refused(sink)  # found after the upsert: both at once, not key 2 (the guard refused it)
    assert sorted(e.origin.offset for e in first.errors) == sorted(bad)
    assert rows(db, schema, "customer_directory", "id") == [(1,)]  # rolled back
    for offset in bad:
        assert sink.drop(TOPIC, 0, offset)
    sink.flush()
    assert rows(db, schema, "customer_directory", "id, about") == [(1, BIO), (5, BIO)]

    assert sink.probe.left > 0  # armed: the next batch's placeholder keys are read first
    bad = add_batch(sink, 2000, 8, (6, 7), 8)
    left = sink.probe.left
    early = refused(sink)
    assert sink.probe.left == sink.probe.span  # read first (counted), found some: re-armed
    sink.probe.left = 0
    late = refused(sink)  # the same batch, checked after the upsert only
    assert left > 0
    assert [str(e) for e in early.errors] == [str(e) for e in late.errors]  # same records, same text
    assert sorted(e.origin.offset for e in early.errors) == sorted(bad)
    sink.probe.refused()
    for offset in bad:
        sink.drop(TOPIC, 0, offset)
    sink.flush()  # armed: reads first, finds none, writes
    assert rows(db, schema, "customer_directory", "id, email, about") == [
        (1, "e2000", BIO),
        (5, "g", BIO),
        (8, "g", BIO),
    ]
    assert rows(db, schema, "customer_directory__cf_deleted", "id") == [(2,)]


def test_every_row_postgresql_rejects_alone_is_named_in_one_isolation_pass(
    sink_conninfo: str, schema: str, db: Conn
) -> None:
    scores = TableMapping(
        "public.customers",
        "scores",
        [Column("id", type="bigint"), Column("email", type="smallint")],
        key=["id"],
        sink_schema=schema,
    )
    sink = PostgresSink(sink_conninfo, [scores], "g", control_schema=schema)
    sink.ensure_schema()
    for n in range(10):  # every third out of smallint range (22003)
        sink.add(0, event("c", {"id": n, "email": 99999 if n % 3 == 1 else n}, 100 + n, n))
    with pytest.raises(SinkRowErrors) as exc:
        sink.flush()
    assert [(e.origin.offset, e.sqlstate) for e in exc.value.errors] == [
        (1, "22003"),
        (4, "22003"),
        (7, "22003"),
    ]
    assert rows(db, schema, "scores") == []
    for e in exc.value.errors:
        assert sink.drop(TOPIC, 0, e.origin.offset)
    assert sink.flush().applied == 7
