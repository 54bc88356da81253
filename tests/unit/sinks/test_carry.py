"""Primary-key changes with unchanged TOAST: carried from the batch or the sink, never NULL."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from streams.cdc import ChangeEvent
from streams.errors import SinkRowError
from streams.sinks import UNAVAILABLE_VALUE, TableMapping
from streams.sinks.batch import Batch, Write, merge, to_write
from streams.sinks.carry import carry_steps, old_key_of, stored_rows_sql
from streams.sinks.flush import flush_steps
from streams.sinks.mapping import ConflictPolicy, DeletePolicy
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
    plan: Generator[tuple[Any, list[list[Any]]], list[Any], list[Write]],
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
    out, asked = run(
        carry_steps(newest(writes), writes), [[1, None, False, None, None], [2, pos(90), False, None, "v"]]
    )
    assert asked == [[[1001, 1]]]  # the new key first, then the old one
    (create,) = [w for w in out if w.key == (1001,)]
    assert (create.values, create.keep, create.unavailable) == (("e", "v"), frozenset(), frozenset())


@pytest.mark.parametrize("old", [None, 500, 600], ids=["no-old-row", "old-row-at-the-move", "old-row-newer"])
def test_unknown_value_is_refused_naming_the_column(customers: TableMapping, old: int | None) -> None:
    writes = moved(customers)
    rows = [[1, None, False, None, None], [2, None if old is None else pos(old), False, None, "v"]]
    with pytest.raises(
        SinkRowError, match=r"column\(s\) about .*placeholder.*refusing to insert NULL"
    ) as exc:
        run(carry_steps(newest(writes), writes), rows)
    assert exc.value.origin.offset == 12
    assert exc.value.key == (1001,)


def test_replay_keeps_the_value_the_first_application_wrote(customers: TableMapping) -> None:
    """Replayed, the old key is a tombstone and the new key's row exists: the guard decides."""
    writes = moved(customers)
    rows = [[1, pos(MOVE), False, None, None], [2, None, False, pos(MOVE), None]]
    out, _ = run(carry_steps(newest(writes), writes), rows)
    (create,) = [w for w in out if w.key == (1001,)]
    assert create.keep == {"about"}  # ON CONFLICT leaves the stored value alone


def test_a_newer_tombstone_of_the_new_key_refuses_the_write_anyway(customers: TableMapping) -> None:
    writes = moved(customers)
    rows = [[1, None, False, pos(MOVE + 1), None], [2, None, False, None, None]]
    out, _ = run(carry_steps(newest(writes), writes), rows)
    assert [w.keep for w in out if w.key == (1001,)] == [{"about"}]
    lww = TableMapping(
        customers.source_table,
        customers.sink_table,
        customers.columns,
        customers.key,
        conflict_policy=ConflictPolicy.LAST_WRITER_WINS,
    )
    writes = moved(lww)
    with pytest.raises(SinkRowError):  # last-writer-wins would apply it over the tombstone
        run(carry_steps(newest(writes), writes), rows)


def test_soft_deleted_old_row_at_the_move_is_the_moved_rows_state(customers: TableMapping) -> None:
    soft = TableMapping(
        customers.source_table,
        customers.sink_table,
        customers.columns,
        customers.key,
        delete_policy=DeletePolicy.SOFT,
    )
    writes = moved(soft)[1:]  # the soft delete was flushed in an earlier batch
    out, _ = run(
        carry_steps(newest(writes), writes), [[1, None, False, None, None], [2, pos(MOVE), True, None, "v"]]
    )
    assert out[0].values == ("e", "v")


def test_an_update_of_a_row_the_sink_lacks_is_refused_too(customers: TableMapping) -> None:
    writes = [write(customers, pg_event("u", {"id": 7, "email": "a", "bio": P}, 100))]
    with pytest.raises(SinkRowError, match=r"no __debezium\.oldkey header"):
        run(carry_steps(newest(writes), writes), [[1, None, False, None, None]])
    out, _ = run(carry_steps(newest(writes), writes), [[1, pos(90), False, None, "stored"]])
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
            rows = (
                [[1, None, False, None, None], [2, pos(100), False, None, "v"]]
                if steps[-1].query == read
                else []
            )
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
