"""Primary-key changes with unchanged TOAST: carried from the batch or the sink, never NULL."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from streams.cdc import ChangeEvent
from streams.errors import SinkRowError, SinkRowErrors
from streams.sinks import UNAVAILABLE_VALUE, TableMapping
from streams.sinks.batch import Batch, Write, merge, to_write
from streams.sinks.carry import (
    MovedRows,
    carry_steps,
    check_inserted,
    inserted_errors,
    old_key_of,
    stored_rows_sql,
    unknown_error,
)
from streams.sinks.flush import flush_steps
from streams.sinks.mapping import DeletePolicy
from tests.unit.sinks.sink_events import pg_event

P = UNAVAILABLE_VALUE
MOVE = 500  # the delete of the old key and the create of the new one share this position


def write(m: TableMapping, ev: ChangeEvent, old: dict[str, Any] | None = None) -> Write:
    return to_write(m, ev, old_key=old)


def moved(m: TableMapping, bio: str = P, email: str = "e") -> list[Write]:
    """``UPDATE … SET id = 1001 WHERE id = 1``: delete of 1, create of 1001 (bio unchanged)."""
    return [
        write(m, pg_event("d", {"id": 1}, MOVE, offset=10)),
        write(m, pg_event("c", {"id": 1001, "email": email, "bio": bio}, MOVE, offset=12), {"id": 1}),
    ]


def pos(lsn: int) -> bytes:
    return pg_event("u", {"id": 0}, lsn).position.to_bytes()  # type: ignore[union-attr]


def run(
    plan: Generator[tuple[Any, list[Any]], list[Any], list[Write]],
    answer: list[list[Any]] | None = None,
) -> tuple[list[Write], list[list[list[Any]]]]:
    """Drive ``carry_steps``, answering its one read with ``answer``; return writes and params."""
    asked: list[list[list[Any]]] = []
    try:
        _, params = next(plan)
        while True:
            asked.append(params)
            assert answer is not None, "no read expected"
            _, params = plan.send(answer)
    except StopIteration as done:
        return done.value, asked


def newest(writes: list[Write]) -> list[Write]:
    b = Batch()
    b.writes = writes
    return b.newest()


def test_old_key_header_is_read_as_json() -> None:
    assert old_key_of([("x", b"1"), ("__debezium.oldkey", b'{"id":1}')]) == {"id": 1}
    assert old_key_of([("__debezium.newkey", b'{"id":2}')]) is None
    assert old_key_of([("__debezium.oldkey", b"not json")]) is None
    assert old_key_of(None) is None


def test_placeholder_is_unavailable_but_a_missing_field_is_not(customers: TableMapping) -> None:
    w = write(customers, pg_event("c", {"id": 1001, "email": "e", "bio": P}, MOVE), {"id": 1})
    assert (w.keep, w.unavailable, w.old_key, w.moved_at) == ({"about"}, {"about"}, (1,), pos(MOVE))
    missing = write(customers, pg_event("u", {"id": 1, "email": "e"}, MOVE))
    assert (missing.keep, missing.unavailable, missing.old_key) == ({"about"}, frozenset(), None)
    gone = write(customers, pg_event("d", {"id": 1}, MOVE), {"id": 9})
    assert (gone.unavailable, gone.old_key) == (frozenset(), None)


def test_a_later_update_of_the_moved_row_keeps_its_old_key(customers: TableMapping) -> None:
    create = moved(customers)[1]
    later = write(customers, pg_event("u", {"id": 1001, "email": "f", "bio": P}, MOVE + 10))
    m = merge(create, later)
    assert (m.values, m.unavailable, m.old_key, m.moved_at) == (("f", None), {"about"}, (1,), pos(MOVE))


def test_carried_from_the_old_keys_write_in_the_same_batch(customers: TableMapping) -> None:
    insert = write(customers, pg_event("c", {"id": 1, "email": "a", "bio": "16 KiB"}, 100))
    writes = [insert, *moved(customers)]
    out, asked = run(carry_steps(newest(writes), writes))
    assert asked == []  # nothing left to read from the sink
    by_key = {w.key: w for w in out}
    assert by_key[(1,)].hard_delete
    assert (by_key[(1001,)].values, by_key[(1001,)].keep) == (("e", "16 KiB"), frozenset())


def test_an_old_key_update_with_the_placeholder_does_not_count(customers: TableMapping) -> None:
    update = write(customers, pg_event("u", {"id": 1, "email": "a", "bio": P}, 100))
    writes = [update, *moved(customers)]
    # The sink's row of key 1 (older than the move) has the value: carried from there.
    out, asked = run(carry_steps(newest(writes), writes), [[1, pos(90), False, "v"]])
    assert asked == [[[1]]]  # only the old key: the new key's own row needs no read
    (create,) = [w for w in out if w.key == (1001,)]
    assert (create.values, create.keep, create.unavailable) == (("e", "v"), frozenset(), frozenset())


@pytest.mark.parametrize("old", [None, 500, 600], ids=["no-old-row", "old-row-at-the-move", "old-row-newer"])
def test_unknown_value_stays_kept_and_an_insert_of_it_is_refused(
    customers: TableMapping, old: int | None
) -> None:
    writes = moved(customers)
    out, _ = run(carry_steps(newest(writes), writes), [[1, None if old is None else pos(old), False, "v"]])
    (n,) = [n for n, w in enumerate(out) if w.key == (1001,)]
    assert (out[n].keep, out[n].unavailable) == ({"about"}, {"about"})
    check_inserted(out, [])  # updated or refused by the guard (a replay): the stored value stays
    with pytest.raises(
        SinkRowError, match=r"column\(s\) about .*placeholder.*refusing to insert NULL"
    ) as exc:
        check_inserted(out, [n])  # inserted: it would have written NULL
    assert exc.value.origin.offset == 12
    assert exc.value.key == (1001,)


def test_only_placeholders_make_an_insert_an_error(customers: TableMapping) -> None:
    missing = write(customers, pg_event("u", {"id": 1, "email": "e"}, 100))  # field not in schema
    soft = TableMapping(
        customers.source_table,
        customers.sink_table,
        customers.columns,
        customers.key,
        delete_policy=DeletePolicy.SOFT,
    )
    soft_delete = write(soft, pg_event("d", {"id": 2}, 100))
    check_inserted([missing, soft_delete], [0, 1])
    update = write(customers, pg_event("u", {"id": 7, "email": "a", "bio": P}, 100))
    with pytest.raises(SinkRowError, match=r"no __debezium\.oldkey header"):
        check_inserted([missing, update], [0, 1])


def test_soft_deleted_old_row_at_the_move_is_the_moved_rows_state(customers: TableMapping) -> None:
    soft = TableMapping(
        customers.source_table,
        customers.sink_table,
        customers.columns,
        customers.key,
        delete_policy=DeletePolicy.SOFT,
    )
    writes = moved(soft)[1:]  # the soft delete was flushed in an earlier batch
    out, _ = run(carry_steps(newest(writes), writes), [[1, pos(MOVE), True, "v"]])
    assert out[0].values == ("e", "v")


def test_an_update_with_a_placeholder_reads_nothing(customers: TableMapping) -> None:
    writes = [write(customers, pg_event("u", {"id": 7, "email": "a", "bio": P}, 100))]
    out, asked = run(carry_steps(newest(writes), writes))
    assert asked == []
    assert out[0].keep == {"about"}


def test_writes_without_placeholders_read_nothing(customers: TableMapping) -> None:
    writes = moved(customers, bio="full")
    out, asked = run(carry_steps(newest(writes), writes))
    assert asked == []
    assert out == newest(writes)


def test_flush_reads_the_old_key_before_any_write(customers: TableMapping) -> None:
    b = Batch()
    b.writes = moved(customers)
    b.mark("cf.public.customers", 0, 12)
    plan = flush_steps(b, "g", "public")
    read = stored_rows_sql(customers, ("about",))
    steps = [next(plan)]
    try:
        while True:
            rows = [[1, pos(100), False, "v"]] if steps[-1].query == read else []
            steps.append(plan.send(rows))
    except StopIteration:
        pass
    queries = [s.query for s in steps]
    writes = [n for n, q in enumerate(queries) if "INSERT INTO" in q.as_string(None)]
    assert queries.index(read) < min(writes)  # before the old key's delete runs
    (upsert,) = [
        s for s in steps if s.params and s.params[0] == [1001] and "INSERT" in s.query.as_string(None)
    ]
    assert upsert.params[1:3] == [["e"], ["v"]]  # the carried value, nothing kept
    text = upsert.query.as_string(None)
    assert '"about" = EXCLUDED."about"' in text


def test_a_move_split_across_flushes_carries_through_memory(customers: TableMapping) -> None:
    memory = MovedRows()
    delete = write(customers, pg_event("d", {"id": 1}, MOVE, offset=10))
    delete = to_write(customers, delete.event, new_key={"id": 1001})
    out, asked = run(carry_steps([delete], [delete], memory), [[1, pos(100), False, "16 KiB", "a"]])
    assert asked == [[[1]]]  # the old row (every value column, by name) before its delete runs
    assert memory.known == {}  # not before the flush commits
    memory.commit()
    create = moved(customers)[1]
    out, asked = run(carry_steps([create], [create], memory))
    assert asked == []
    assert (out[0].values, out[0].keep) == (("e", "16 KiB"), frozenset())
    run(carry_steps([create], [create], memory))  # a retried flush: still there
    memory.commit()
    assert memory.known == {}  # used once committed


def test_a_delete_flushed_with_its_create_is_not_remembered(customers: TableMapping) -> None:
    memory = MovedRows()
    delete, create = moved(customers)
    delete = to_write(customers, delete.event, new_key={"id": 1001})
    run(
        carry_steps(newest([delete, create]), [delete, create], memory),
        [[1, pos(100), False, "v"]],
    )
    memory.commit()
    assert memory.known == {}


def test_flush_refuses_an_insert_of_a_kept_placeholder(customers: TableMapping) -> None:
    b = Batch()
    b.writes = [write(customers, pg_event("u", {"id": 7, "email": "a", "bio": P}, 100, offset=4))]
    b.mark("cf.public.customers", 0, 4)
    plan = flush_steps(b, "g", "public")
    step = next(plan)  # the partition lock
    step = plan.send([])
    assert "_cf_inserted" in step.query.as_string(None)
    with pytest.raises(SinkRowError, match="about"):
        plan.send([[1, True]])
    plan = flush_steps(b, "g", "public")
    next(plan)
    plan.send([])
    plan.send([[1, False]])  # an update of the stored row: no error, the flush goes on


def test_flush_names_every_insert_of_a_kept_placeholder_in_one_attempt(customers: TableMapping) -> None:
    bad = [
        write(customers, pg_event("u", {"id": i, "email": "a", "bio": P}, 100 + i, offset=i))
        for i in range(1, 4)
    ]
    good = write(customers, pg_event("c", {"id": 9, "email": "a", "bio": "full"}, 200, offset=9))
    b = Batch()
    b.writes = [*bad, good]
    b.mark("cf.public.customers", 0, 9)
    upserts: list[Any] = []

    def every_write_inserts() -> None:  # no row for any key
        plan = flush_steps(b, "g", "public")
        step = next(plan)
        while True:
            upsert = "INSERT INTO" in step.query.as_string(None)
            upserts.extend([step] if upsert else [])
            step = plan.send([[n + 1, True] for n in range(len(step.params[0]))] if upsert else [])

    with pytest.raises(SinkRowErrors) as exc:
        every_write_inserts()
    assert len(upserts) == 2  # both statement groups ran (placeholder kept, and not) before the error
    assert [e.origin.offset for e in exc.value.errors] == [1, 2, 3]
    assert [str(e) for e in exc.value.errors] == [str(unknown_error(w)) for w in bad]  # letter texts
    assert exc.value.origin.offset == 1  # as a plain SinkRowError: the first
    assert [e.origin.offset for e in inserted_errors(bad, [2, 0])] == [1, 3]  # index order
