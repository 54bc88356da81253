"""Customer updates without a before image: the sink's previous row decides what changed."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace
from typing import Any

from streams.cdc import parse_change_event
from streams.demo.project import shipping_mappings
from streams.demo.project.customers import BEFORE_COLUMNS, customer_events
from streams.errors import SinkRowError
from streams.sinks.batch import key_of, to_write
from streams.sinks.flush import SinkCore
from streams.sinks.previous import PreviousRows, _KeyWrites, _newest_before, _plain_key, _plan, with_before
from tests.unit.sinks.sink_events import pg_event

ROW = {"id": 7, "email": "a@x.test", "first_name": "Ada", "last_name": "L", "phone": None, "tier": "gold"}


class FakeSink(SinkCore):
    conninfo = "unused"


class NoDb(PreviousRows):
    """Answers lookups from a dict instead of the sink database."""

    def __init__(self, sink: Any, stored: dict[tuple[Any, ...], tuple[Any, ...]]) -> None:
        super().__init__(sink, {"public.customers": BEFORE_COLUMNS})
        self.stored = stored

    def _lookup(self, m: Any, key: tuple[Any, ...], names: list[str]) -> tuple[Any, ...] | None:
        self.lookups += 1
        return self.stored.get(key)


def types(change: Any, prev: PreviousRows) -> list[str]:
    return [e.record.rsplit(".", 1)[1] for e in customer_events(prev.fill(change))]


def test_only_real_changes_are_emitted_using_the_batch_then_the_sink() -> None:
    sink = FakeSink(shipping_mappings(), "g")
    prev = NoDb(sink, {})
    sink.add(0, pg_event("c", ROW, 10))
    # Buffered insert is the previous row: a tier-only update changes nothing the contracts know.
    assert types(pg_event("u", {**ROW, "tier": "silver"}, 20), prev) == []
    email = pg_event("u", {**ROW, "email": "b@x.test"}, 30)
    [changed] = customer_events(prev.fill(email))
    assert changed.data == {"customer_id": 7, "old_email": "a@x.test", "new_email": "b@x.test"}
    assert prev.lookups == 0


def test_the_sink_row_counts_only_when_it_is_older_than_the_event() -> None:
    sink = FakeSink(shipping_mappings(), "g")
    older = pg_event("c", ROW, 10).position.to_bytes()  # type: ignore[union-attr]
    newer = pg_event("c", ROW, 99).position.to_bytes()  # type: ignore[union-attr]
    stored = ("a@x.test", "Ada", "L", None, older)  # BEFORE_COLUMNS in mapping order, then the position
    prev = NoDb(sink, {(7,): stored})
    assert types(pg_event("u", {**ROW, "phone": "+41"}, 20), prev) == ["CustomerProfileUpdated"]
    prev.stored = {(7,): (*stored[:-1], newer)}  # a replay behind the sink: no honest before image
    assert types(pg_event("u", ROW, 20), prev) == ["CustomerEmailChanged", "CustomerProfileUpdated"]
    prev.stored = {}  # a customer the sink has never seen
    assert types(pg_event("u", ROW, 20), prev) == ["CustomerEmailChanged", "CustomerProfileUpdated"]


def test_inserts_deletes_and_other_tables_are_left_alone() -> None:
    sink = FakeSink(shipping_mappings(), "g")
    prev = NoDb(sink, {})
    for change in (pg_event("c", ROW, 10), pg_event("d", ROW, 11), pg_event("u", ROW, 12, table="other")):
        assert prev.fill(change) is change
    assert prev.lookups == 0


def test_with_before_is_replace_without_the_init() -> None:
    change = pg_event("u", ROW, 20)
    before = {"email": "old@x.test"}
    rebuilt = with_before(change, before)
    assert rebuilt == replace(change, before=before)
    assert rebuilt.before is before
    assert change.before is None
    assert type(rebuilt) is type(change)
    assert rebuilt.logical_types is change.logical_types

    @dataclass(frozen=True, slots=True)
    class Slotted:
        op: str
        before: Any = None

    assert with_before(Slotted("u"), before) == Slotted("u", before)  # type: ignore[arg-type]


def _scan(writes: list[Any], incoming: bytes) -> Any:
    """The batch lookup as it was before ``_KeyWrites``: a scan of all the key's writes."""
    newest = None
    for w in writes:
        if w.position < incoming and not w.hard_delete and (newest is None or w.position > newest.position):
            newest = w
    return newest


def test_key_writes_answer_exactly_like_the_full_scan() -> None:
    rng = random.Random(13)
    sink = FakeSink(shipping_mappings(), "g")
    for _ in range(300):
        writes = []
        entry = _KeyWrites()
        for i in range(rng.randrange(1, 12)):
            # Out-of-order and repeated positions (replays), deletes (hard for customer_directory).
            op = rng.choice("cuud")
            event = pg_event(op, {**ROW, "email": f"{i}@x.test"}, rng.randrange(5, 40), offset=i)
            sink.add(0, event)
            w = sink.batch.writes[-1]
            writes.append(w)
            entry.add(w)
        sink.batch.writes.clear()
        for lsn in range(1, 45):
            incoming = pg_event("u", ROW, lsn).position.to_bytes()  # type: ignore[union-attr]
            assert entry.newest_before(incoming) is _scan(writes, incoming)


def test_a_hot_key_in_a_long_batch_is_filled_from_its_newest_write() -> None:
    sink = FakeSink(shipping_mappings(), "g")
    prev = NoDb(sink, {})
    sink.add(0, pg_event("c", ROW, 10))
    for lsn in range(11, 2000):
        change = pg_event("u", {**ROW, "email": f"{lsn}@x.test"}, lsn)
        filled = prev.fill(change)
        assert filled.before is not None
        assert filled.before["email"] == f"{lsn - 1}@x.test" if lsn > 11 else "a@x.test"
        sink.add(0, change)
    assert prev.lookups == 0


def test_the_batch_index_answers_like_a_scan_of_the_whole_batch() -> None:
    """Short and long catch-ups, keys with one write (a bare entry) and hot keys, two sink tables
    interleaved, replays, hard deletes, and the batch list replaced (a flush or a dead letter
    dropped) between two looks."""
    rng = random.Random(29)
    sink = FakeSink(shipping_mappings(), "g")
    prev = NoDb(sink, {})
    mine = sink.mappings["public.customers"]
    other = replace(mine, sink_table="customer_copy")
    asked = 0
    for _ in range(4000):
        roll = rng.random()
        if roll < 0.05:
            sink.batch.writes = [w for w in sink.batch.writes if rng.random() < 0.7]
        elif roll < 0.4:
            for _ in range(rng.choice([1, 2, 5, 15, 16, 17, 40])):
                cid = rng.randrange(1, 30) if rng.random() < 0.5 else rng.randrange(30, 400)
                event = pg_event(rng.choice("ccud"), {**ROW, "id": cid}, rng.randrange(5, 300))
                sink.batch.writes.append(to_write(rng.choice([mine, mine, other]), event))
        else:
            m = rng.choice([mine, other])
            key = (rng.randrange(1, 30) if rng.random() < 0.5 else rng.randrange(30, 400),)
            incoming = pg_event("u", ROW, rng.randrange(5, 310)).position.to_bytes()  # type: ignore[union-attr]
            same = [w for w in sink.batch.writes if w.mapping.sink_table == m.sink_table and w.key == key]
            expected = _scan(same, incoming)
            assert _newest_before(prev._buffered(m, key), incoming) is expected
            asked += expected is not None
    assert asked > 100  # the answers were not all "nothing buffered"


def test_a_second_write_of_a_key_keeps_the_first_for_older_updates() -> None:
    sink = FakeSink(shipping_mappings(), "g")
    prev = NoDb(sink, {})
    m = sink.mappings["public.customers"]
    sink.add(0, pg_event("c", ROW, 10))
    assert prev.fill(pg_event("u", ROW, 11)).before is not None  # the key's only write is indexed
    sink.add(0, pg_event("u", {**ROW, "email": "b@x.test"}, 50))
    # Out of order (a replay): the write at 50 is newer than this update, the one at 10 is not.
    filled = prev.fill(pg_event("u", ROW, 30))
    assert filled.before is not None
    assert filled.before["email"] == "a@x.test"
    assert _newest_before(prev._buffered(m, (7,)), b"\xff") is sink.batch.writes[1]


def test_the_plain_key_is_key_of_or_leaves_it_to_key_of() -> None:
    """The shortcut for a one-column key gives ``key_of``'s key, or None where ``key_of`` must
    decide (a logical type, a missing value: ``key_of`` then converts or raises)."""
    m = FakeSink(shipping_mappings(), "g").mappings["public.customers"]
    plan = _plan(m, BEFORE_COLUMNS)
    assert plan.key_source == "id"
    rng = random.Random(17)
    shortcut = 0
    for i in range(600):
        row: dict[str, Any] = {**ROW, "id": rng.choice([7, 0, -1, 2**62, "7", None])}
        if rng.random() < 0.2:
            del row["id"]
        source = {"connector": "postgresql", "schema": "public", "table": "customers", "txId": 1}
        value = {
            "op": rng.choice("cud"),
            "before": row,
            "after": row,
            "source": {**source, "sequence": '["1", "2"]'},
        }
        key = rng.choice([{"id": 9}, {"id": None}, {}, None, "raw"])
        types = rng.choice([{}, {"id": "io.debezium.time.Date"}, {"email": "x"}])
        change = parse_change_event(value, key=key, topic="t", offset=i, logical_types=types)
        try:
            expected: Any = key_of(m, change)
        except (SinkRowError, ValueError, TypeError, ArithmeticError) as exc:
            expected = type(exc)  # the shortcut must then leave it to key_of
        fast = _plain_key(plan.key_source, change)
        if fast is not None:
            shortcut += 1
            assert fast == expected
    assert shortcut > 200
    assert _plain_key(None, pg_event("u", ROW, 5)) is None  # a converted or multi-column key


class Prefetched(NoDb):
    """Answers the per-poll prefetch from a list of sink rows instead of the sink database."""

    def __init__(self, sink: Any, rows: list[tuple[Any, ...]]) -> None:
        super().__init__(sink, {})
        self.rows = rows
        self.asked: list[Any] = []

    async def _prefetch_query(self, query: Any, params: list[Any]) -> list[tuple[Any, ...]]:
        self.asked = sorted(params[0])
        return [r for r in self.rows if r[0] in params[0]]


def test_prefetched_rows_answer_and_a_key_the_sink_lacks_needs_no_lookup() -> None:
    sink = FakeSink(shipping_mappings(), "g")
    older = pg_event("c", ROW, 10).position.to_bytes()  # type: ignore[union-attr]
    prev = Prefetched(sink, [(7, "a@x.test", "Ada", "L", None, older)])
    asyncio.run(prev.prefetch({"public.customers": [{"id": 7}, {"id": 8}, {"id": None}, {"id": 7}]}))
    assert prev.asked == [7, 8]
    assert types(pg_event("u", {**ROW, "phone": "+41"}, 20), prev) == ["CustomerProfileUpdated"]
    both = ["CustomerEmailChanged", "CustomerProfileUpdated"]
    assert types(pg_event("u", {**ROW, "id": 8}, 20), prev) == both  # the sink has no row 8
    assert prev.lookups == 0
    assert types(pg_event("u", {**ROW, "id": 9}, 20), prev) == both  # not prefetched: looked up
    assert prev.lookups == 1
    asyncio.run(prev.prefetch({}))  # the next poll forgets this one's rows
    assert types(pg_event("u", {**ROW, "phone": "+41"}, 20), prev) == both
    assert prev.lookups == 2
