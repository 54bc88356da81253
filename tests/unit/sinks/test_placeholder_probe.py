"""The read before the upsert that names placeholder inserts while they flow (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from streams.errors import SinkRowErrors
from streams.sinks import UNAVAILABLE_VALUE, TableMapping
from streams.sinks.batch import Batch, Write, to_write
from streams.sinks.carry import unknown_error
from streams.sinks.flush import flush_steps
from streams.sinks.probe import PlaceholderProbe, probe_steps, suspects, would_insert_sql
from tests.unit.sinks.sink_events import pg_event

P = UNAVAILABLE_VALUE


def update(m: TableMapping, cid: int, offset: int, bio: str = P) -> Write:
    return to_write(m, pg_event("u", {"id": cid, "email": "a", "bio": bio}, 100 + offset, offset=offset))


def test_the_probe_stays_armed_for_a_span_after_a_refusal() -> None:
    probe = PlaceholderProbe(span=2)
    assert not probe.armed()
    probe.refused()
    assert [probe.armed(), probe.armed(), probe.armed()] == [True, True, False]


def test_only_writes_that_could_insert_a_placeholder_are_suspects(customers: TableMapping) -> None:
    ok, bad = update(customers, 1, 1, bio="full"), update(customers, 2, 2)
    delete = to_write(customers, pg_event("d", {"id": 3}, 200, offset=3))
    assert suspects([ok, bad, delete]) == {customers: [bad]}


def test_probe_names_what_the_read_says_would_insert(customers: TableMapping) -> None:
    writes = [update(customers, cid, cid) for cid in (1, 2, 3)]
    plan = probe_steps(writes)
    query, params = next(plan)
    assert query == would_insert_sql(customers)
    assert params == [[1, 2, 3], [w.position for w in writes]]
    with pytest.raises(StopIteration) as done:
        plan.send([[1], [3]])  # ordinals: keys 1 and 3 have no row
    assert [str(e) for e in done.value.value] == [str(unknown_error(writes[n])) for n in (0, 2)]


def test_an_armed_flush_names_them_before_any_write(customers: TableMapping) -> None:
    b = Batch()
    b.writes = [update(customers, 1, 1), update(customers, 2, 2), update(customers, 3, 3, bio="full")]
    b.mark("cf.public.customers", 0, 3)
    probe = PlaceholderProbe()
    probe.refused()
    plan = flush_steps(b, "g", "public", probe=probe)
    seen: list[Any] = [next(plan)]  # the partition lock

    def answer() -> None:
        while True:
            text = seen[-1].query.as_string(None)
            assert "INSERT INTO" not in text
            seen.append(plan.send([[1], [2]] if "_cf_idx" in text and "NOT EXISTS" in text else []))

    with pytest.raises(SinkRowErrors) as exc:
        answer()
    assert [e.origin.offset for e in exc.value.errors] == [1, 2]
    assert probe.left == probe.span


def test_a_disarmed_flush_reads_nothing_first(customers: TableMapping) -> None:
    b = Batch()
    b.writes = [update(customers, 1, 1)]
    b.mark("cf.public.customers", 0, 1)
    plan = flush_steps(b, "g", "public", probe=PlaceholderProbe())
    next(plan)  # the partition lock
    assert "INSERT INTO" in plan.send([]).query.as_string(None)


def test_drop_all_removes_exactly_the_named_records(customers: TableMapping) -> None:
    b = Batch()
    b.writes = [update(customers, cid, cid) for cid in range(1, 6)]
    b.mark("cf.public.customers", 0, 5)
    assert b.drop_all([("cf.public.customers", 0, 2), ("cf.public.customers", 0, 4), ("other", 0, 1)]) == 2
    assert [w.event.offset for w in b.writes] == [1, 3, 5]
    assert b.next_offsets == {("cf.public.customers", 0): 6}  # their offsets stay consumed
