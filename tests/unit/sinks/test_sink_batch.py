"""Buffering: newest position wins per key, TOAST gaps are filled, offsets always advance."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from streams.cdc import Op
from streams.errors import PermanentError, SinkRowError
from streams.sinks import UNAVAILABLE_VALUE, TableMapping, is_unavailable
from streams.sinks.batch import Batch, to_write
from streams.sinks.mapping import DeletePolicy
from tests.unit.sinks.sink_events import pg_event


def batch_of(m: TableMapping, *events: object) -> Batch:
    b = Batch()
    for ev in events:
        w = to_write(m, ev)  # type: ignore[arg-type]  # events built by pg_event
        b.writes.append(w)
        b.mark(w.event.topic, w.event.partition, w.event.offset)
    return b


def test_newest_position_wins_regardless_of_arrival_order(customers: TableMapping) -> None:
    b = batch_of(
        customers,
        pg_event("u", {"id": 1, "email": "new", "bio": "x"}, 300, offset=5),
        pg_event("u", {"id": 1, "email": "old", "bio": "x"}, 200, offset=6),
        pg_event("c", {"id": 2, "email": "two", "bio": "y"}, 100, offset=7),
    )
    newest = {w.key: w for w in b.newest()}
    assert newest[(1,)].values == ("new", "x")
    assert len(newest) == 2
    assert b.next_offsets == {("cf.public.customers", 0): 8}


def test_toast_placeholder_keeps_column_and_is_filled_from_an_older_write(customers: TableMapping) -> None:
    b = batch_of(
        customers,
        pg_event("c", {"id": 1, "email": "a", "bio": "large"}, 100),
        pg_event("u", {"id": 1, "email": "b", "bio": UNAVAILABLE_VALUE}, 110),
    )
    (w,) = b.newest()
    assert w.values == ("b", "large")
    assert w.keep == frozenset()
    alone = batch_of(customers, pg_event("u", {"id": 1, "email": "b", "bio": UNAVAILABLE_VALUE}, 110))
    (w,) = alone.newest()
    assert w.keep == {"about"}
    assert w.values == ("b", None)


def test_hard_delete_replaces_older_writes_and_groups_separately(customers: TableMapping) -> None:
    b = batch_of(
        customers,
        pg_event("c", {"id": 1, "email": "a", "bio": "x"}, 100),
        pg_event("d", {"id": 1}, 110),
        pg_event("c", {"id": 2, "email": "b", "bio": UNAVAILABLE_VALUE}, 120),
    )
    groups = {(hard, keep): [w.key for w in ws] for (_, hard, keep), ws in b.groups().items()}
    assert groups == {(True, frozenset()): [(1,)], (False, frozenset({"about"})): [(2,)]}


def test_delete_key_from_kafka_key_when_before_image_lacks_it(customers: TableMapping) -> None:
    ev = pg_event("d", {"email": None}, 100)
    ev = type(ev)(**{**ev.__dict__, "key": {"id": 7}})
    assert to_write(customers, ev).key == (7,)


def test_missing_key_is_a_poison_record(customers: TableMapping) -> None:
    with pytest.raises(SinkRowError) as info:
        to_write(customers, pg_event("c", {"email": "no id"}, 100, offset=9))
    assert isinstance(info.value, PermanentError)
    assert info.value.origin.offset == 9


def test_drop_and_discard_partition(customers: TableMapping) -> None:
    b = batch_of(
        customers,
        pg_event("c", {"id": 1, "email": "old", "bio": "x"}, 100, offset=1),
        pg_event("u", {"id": 1, "email": "poison", "bio": "x"}, 110, offset=2),
        pg_event("c", {"id": 3, "email": "p1", "bio": "x"}, 120, offset=0, partition=1),
    )
    assert b.drop("cf.public.customers", 0, 2)
    assert not b.drop("cf.public.customers", 0, 2)
    assert {w.key: w.values[0] for w in b.newest()} == {(1,): "old", (3,): "p1"}
    assert b.next_offsets[("cf.public.customers", 0)] == 3  # the dropped record stays consumed
    b.discard_partition("cf.public.customers", 1)
    assert [w.key for w in b.newest()] == [(1,)]
    assert ("cf.public.customers", 1) not in b.next_offsets


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (UNAVAILABLE_VALUE, True),
        (UNAVAILABLE_VALUE.encode(), True),
        ([UNAVAILABLE_VALUE], True),
        ("__debezium_unavailable_value ", False),
        (None, False),
        (42, False),
    ],
)
def test_placeholder_detection(value: object, expected: bool) -> None:
    assert is_unavailable(value) is expected


def test_to_write_builds_a_frozen_write_equal_to_the_constructors(customers: TableMapping) -> None:
    """``to_write`` skips the frozen dataclass ``__init__`` (a hot path): the result must be the same."""
    import dataclasses

    from streams.sinks.batch import Write

    soft = dataclasses.replace(customers, delete_policy=DeletePolicy.SOFT)
    for m, ev in itertools.product(
        (customers, soft),
        (
            pg_event("u", {"id": 1, "email": "b", "bio": UNAVAILABLE_VALUE}, 110),
            pg_event("c", {"id": 2, "email": "a", "bio": "x"}, 120),
            pg_event("d", {"id": 3}, 130),
        ),
    ):
        w = to_write(m, ev)
        # None left to a default; besides the fields, only the stored ``hard_delete``.
        assert set(vars(w)) == {f.name for f in dataclasses.fields(Write)} | {"hard_delete"}
        built = Write(**{f.name: getattr(w, f.name) for f in dataclasses.fields(Write)})
        assert w == built
        assert "hard_delete" not in vars(built)  # computed on first read, to the same value
        assert w.hard_delete is built.hard_delete is (ev.op is Op.DELETE and m is customers)
        assert dataclasses.replace(w, values=w.values) == built
        with pytest.raises(dataclasses.FrozenInstanceError):
            w.key = (9,)  # type: ignore[misc]


@pytest.mark.parametrize(
    "bio", [UNAVAILABLE_VALUE.encode(), bytearray(UNAVAILABLE_VALUE.encode()), [UNAVAILABLE_VALUE]]
)
def test_placeholder_in_every_form_keeps_the_column(customers: TableMapping, bio: object) -> None:
    w = to_write(customers, pg_event("u", {"id": 1, "email": "b", "bio": bio}, 110))
    assert w.keep == {"about"}
    assert w.unavailable == {"about"}
    assert w.values == ("b", None)


def test_offsets_never_move_backwards() -> None:
    b = Batch()
    b.mark("t", 0, 7)
    b.mark("t", 0, 3)
    b.mark("t", 1, 0)
    assert b.next_offsets == {("t", 0): 8, ("t", 1): 1}


def _general(m: TableMapping, ev: object) -> object:
    """``to_write`` with the generated row builder declining every row: the general loop's write."""
    from streams.sinks import batch

    saved = batch._row_builder
    batch._row_builder = lambda mapping, types: lambda row, placeholder: None  # type: ignore[assignment]
    try:
        return to_write(m, ev)  # type: ignore[arg-type]  # events built by pg_event
    except SinkRowError as exc:
        return ("poison", str(exc))
    finally:
        batch._row_builder = saved


def _either(m: TableMapping, ev: object) -> object:
    try:
        return to_write(m, ev)  # type: ignore[arg-type]
    except SinkRowError as exc:
        return ("poison", str(exc))


def test_generated_row_builder_gives_the_general_loops_write() -> None:
    """The straight per-mapping builder (``_row_builder``) and the general loop agree on every row
    shape: placeholders in each form, fields missing from the image, a key only in the Kafka key,
    null keys, a column's own converter and semantic types (with and without a converter)."""
    import dataclasses

    from streams.sinks import Column

    def as_text(value: object) -> str:
        return f"<{value}>"

    m = TableMapping(
        "public.customers",
        "customer_directory",
        [
            Column("id", type="bigint"),
            Column("email", convert=as_text),
            Column("bio", "about"),
            Column("created_at", type="timestamptz"),
            Column("n", type="numeric"),
        ],
        key=["id"],
    )
    types = {"created_at": "io.debezium.time.ZonedTimestamp", "n": "io.debezium.time.Date", "x": "unknown"}
    rows: list[dict[str, object]] = [
        {"id": 1, "email": "a", "bio": "x", "created_at": "2026-01-02T03:04:05.123456Z", "n": 3},
        {"id": 1, "email": None, "bio": None, "created_at": None, "n": None},
        {"id": 1, "email": "a", "bio": UNAVAILABLE_VALUE, "created_at": "infinity", "n": 0},
        {"id": 1, "email": UNAVAILABLE_VALUE, "bio": [UNAVAILABLE_VALUE], "created_at": None, "n": 1},
        {"id": 1, "email": "a", "bio": UNAVAILABLE_VALUE.encode(), "n": 1},  # created_at missing
        {"email": "a", "bio": "x", "created_at": None, "n": 1},  # the key only in the Kafka key
        {"id": None, "email": "a", "bio": "x", "created_at": None, "n": 1},
        {"id": 2, "email": "a", "bio": b"bytes", "created_at": None, "n": 2, "extra": 1},
        {"id": 2, "email": "a", "bio": ["a", "b"], "created_at": None, "n": 2},
    ]
    checked = 0
    for row, op, logical in itertools.product(rows, ("c", "u", "r", "d"), (types, {})):
        ev = dataclasses.replace(pg_event(op, row, 100), logical_types=logical)
        for key in (None, {"id": 7}):
            event = dataclasses.replace(ev, key=key)
            assert _either(m, event) == _general(m, event), (row, op, logical, key)
            checked += 1
    assert checked == len(rows) * 4 * 2 * 2
    # The builder takes the plain rows (the comparison above is not general loop against itself).
    from streams.sinks import batch

    build = batch._row_builder(m, types)
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert build(rows[0], UNAVAILABLE_VALUE) == ((1,), ("<a>", "x", at, date(1970, 1, 4)))
    assert build(rows[1], UNAVAILABLE_VALUE) == ((1,), (None, None, None, None))
    assert [build(r, UNAVAILABLE_VALUE) for r in rows[2:7]] == [None] * 5


def test_row_builder_cache_is_bounded_and_keyed_by_identity(customers: TableMapping) -> None:
    from streams.sinks import batch

    batch._BUILDERS.clear()
    first = batch._row_builder(customers, {})
    assert batch._row_builder(customers, {}) is first  # every empty map is one key
    types = {"bio": "io.debezium.time.Date"}
    assert batch._row_builder(customers, types) is not first
    for _ in range(batch._BUILDERS_MAX + 5):
        batch._row_builder(customers, {"bio": "x"})  # a fresh map each time (not the worker's way)
    assert len(batch._BUILDERS) <= batch._BUILDERS_MAX
