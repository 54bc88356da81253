"""The transaction gate (streams.pipeline.transactions), with plain records instead of Kafka's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.pipeline.transactions import BEGIN, END, Gate, Marker, transaction_key

TX = "src.transaction"
ORDERS, LINES, OTHER = "src.db.orders", "src.db.lines", "db.other"
COLLECTIONS = {ORDERS: "db.orders", LINES: "db.lines"}


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    tx: str | None = None
    marker: Marker | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Feed:
    """Offsets per partition handed out in order, like a broker's."""

    def __init__(self) -> None:
        self.next: dict[tuple[str, int], int] = {}

    def rec(self, topic: str, tx: str | None = None, partition: int = 0, marker: Marker | None = None) -> Rec:
        tp = (topic, partition)
        offset = self.next.get(tp, 0)
        self.next[tp] = offset + 1
        return Rec(topic, partition, offset, tx, marker)

    def begin(self, key: str) -> Rec:
        return self.rec(TX, marker=Marker(BEGIN, key))

    def end(self, key: str, **counts: int) -> Rec:
        return self.rec(TX, marker=Marker(END, key, {f"db.{c}": n for c, n in counts.items()}))


def gate(**kw: Any) -> Gate:
    return Gate("src", COLLECTIONS, lambda r: r.tx, lambda r: r.marker, **kw)


def offsets(records: list[Any]) -> list[tuple[str, int]]:
    return [(r.topic, r.offset) for r in records]


def test_a_transaction_leaves_only_when_end_and_every_count_arrived() -> None:
    f, g = Feed(), gate()
    g.offer([f.begin("t1"), f.rec(ORDERS, "t1"), f.rec(LINES, "t1")], 0)
    assert not g.release(0)  # END not seen yet
    g.offer([f.end("t1", orders=1, lines=2)], 0)
    assert not g.release(0)  # one line missing
    assert g.buffered_transactions == 1
    assert g.buffered_rows == 2
    g.offer([f.rec(LINES, "t1")], 0)
    out = g.release(0)
    assert offsets(out.records) == [(ORDERS, 0), (LINES, 0), (LINES, 1)]
    assert out.marks == [(TX, 0, 0), (TX, 0, 1)]  # BEGIN and END, with the transaction
    assert out.transactions == 1
    assert not out.splits
    assert g.buffered_rows == 0
    assert g.buffered_transactions == 0


def test_collections_not_consumed_are_not_counted() -> None:
    f, g = Feed(), gate()
    g.offer([f.begin("t1"), f.rec(ORDERS, "t1"), f.end("t1", orders=1, other=5)], 0)
    assert offsets(g.release(0).records) == [(ORDERS, 0)]


def test_transactions_leave_in_end_order_and_several_at_once() -> None:
    f, g = Feed(), gate()
    g.offer([f.begin("t1"), f.rec(ORDERS, "t1"), f.end("t1", orders=1, lines=1)], 0)
    g.offer([f.begin("t2"), f.rec(LINES, "t2", partition=1), f.end("t2", lines=1)], 0)
    assert not g.release(0)  # t2 is complete but t1 (committed first) is not
    g.offer([f.rec(LINES, "t1")], 0)
    out = g.release(0)
    assert out.transactions == 2
    assert sorted(offsets(out.records)) == [(LINES, 0), (LINES, 0), (ORDERS, 0)]
    assert out.marks == [(TX, 0, i) for i in range(4)]


def test_a_partition_never_leaves_past_a_record_still_held() -> None:
    """A tombstone or snapshot record behind a held transaction's record waits for it: the
    stored offset must not pass the held record."""
    f, g = Feed(), gate()
    g.offer([f.begin("t1"), f.rec(ORDERS, "t1"), f.rec(ORDERS, None)], 0)
    assert not g.release(0)
    g.offer([f.end("t1", orders=1)], 0)
    assert offsets(g.release(0).records) == [(ORDERS, 0), (ORDERS, 1)]


def test_records_without_transaction_metadata_pass_through() -> None:
    f, g = Feed(), gate()
    g.offer([f.rec(ORDERS, None), f.rec(LINES, None)], 0)
    out = g.release(0)
    assert offsets(out.records) == [(ORDERS, 0), (LINES, 0)]
    assert out.transactions == 0


def test_a_transaction_over_max_rows_is_applied_in_parts_until_its_end() -> None:
    f, g = Feed(), gate(max_rows=3)
    g.offer([f.begin("big")] + [f.rec(LINES, "big") for _ in range(3)], 0)
    assert not g.release(0)  # 3 is not over 3
    g.offer([f.rec(LINES, "big")], 0)
    out = g.release(0)
    assert [(s.key, s.reason, s.rows) for s in out.splits] == [("big", "rows", 4)]
    assert len(out.records) == 4
    assert out.marks == [(TX, 0, 0)]  # BEGIN goes, END has not come: the offset stays before it
    assert out.progress == {"big": {"db.lines": 4}}
    assert not out.finished
    g.offer([f.rec(LINES, "big"), f.rec(ORDERS, "big")], 0)
    out = g.release(0)
    assert len(out.records) == 2
    assert not out.splits
    assert out.progress == {"big": {"db.lines": 5, "db.orders": 1}}
    g.offer([f.end("big", lines=5, orders=1)], 0)
    out = g.release(0)
    assert out.finished == ["big"]
    assert out.marks == [(TX, 0, 1)]
    assert out.transactions == 1


def test_an_incomplete_transaction_older_than_the_deadline_is_applied_in_parts() -> None:
    f, g = Feed(), gate(max_wait_s=30)
    g.offer([f.begin("t1"), f.rec(ORDERS, "t1")], 100.0)
    assert not g.release(129.0)
    out = g.release(131.0)
    assert [(s.key, s.reason) for s in out.splits] == [("t1", "wait")]
    assert offsets(out.records) == [(ORDERS, 0)]


def test_a_complete_transaction_is_not_split_however_old() -> None:
    f, g = Feed(), gate(max_wait_s=30)
    g.offer([f.begin("t1"), f.rec(ORDERS, "t1")], 0.0)
    g.offer([f.end("t1", orders=1)], 60.0)
    out = g.release(60.0)
    assert not out.splits
    assert out.transactions == 1
    assert not out.progress


def test_transactions_seen_before_a_split_one_are_split_with_it() -> None:
    f, g = Feed(), gate(max_rows=2)
    g.offer([f.begin("t1"), f.rec(ORDERS, "t1")], 0)  # its END never comes (yet)
    g.offer([f.end("t1", orders=1, lines=1)], 0)
    g.offer([f.begin("t2")] + [f.rec(ORDERS, "t2") for _ in range(3)], 0)
    out = g.release(0)
    assert [s.key for s in out.splits] == ["t1", "t2"]
    assert offsets(out.records) == [(ORDERS, 0), (ORDERS, 1), (ORDERS, 2), (ORDERS, 3)]


def test_a_restart_inside_a_split_transaction_completes_it_from_stored_progress() -> None:
    """The first 4 records were applied before the restart (below the stored offsets): the
    stored counts and the 2 re-read records meet END's counts."""
    f, g = Feed(), gate(max_rows=3)
    g.restore({"big": {"db.lines": 4}}, 0)
    f.next[(TX, 0)] = 0  # the transaction topic resumes before the END
    f.next[(LINES, 0)] = 4
    g.offer([f.begin("big"), f.rec(LINES, "big"), f.rec(LINES, "big")], 0)
    out = g.release(0)
    assert offsets(out.records) == [(LINES, 4), (LINES, 5)]
    assert not out.splits
    assert out.progress == {"big": {"db.lines": 6}}
    g.offer([f.end("big", lines=6)], 0)
    out = g.release(0)
    assert out.finished == ["big"]
    assert out.transactions == 1
    assert g.buffered_transactions == 0


def test_a_redelivered_record_of_a_released_transaction_passes_through() -> None:
    f, g = Feed(), gate()
    g.offer([f.begin("t1"), f.rec(ORDERS, "t1"), f.end("t1", orders=1)], 0)
    assert g.release(0).transactions == 1
    g.offer([f.rec(ORDERS, "t1")], 0)
    assert len(g.release(0).records) == 1
    assert g.buffered_transactions == 0


def test_a_transaction_with_no_consumed_rows_still_moves_the_offsets() -> None:
    f, g = Feed(), gate()
    g.offer([f.begin("hb"), f.end("hb")], 0)
    out = g.release(0)
    assert out.marks == [(TX, 0, 0), (TX, 0, 1)]
    assert not out.records


def test_postgresql_transactions_are_matched_by_xid() -> None:
    """Debezium 3.6 (PostgreSQL): BEGIN and the records say 152943:209340416, END 152943:209353224."""
    pg = "io.debezium.connector.postgresql.PostgresConnector"
    assert transaction_key(pg, "152943:209340416") == transaction_key(pg, "152943:209353224")
    assert transaction_key("io.debezium.connector.mariadb.MariaDbConnector", "0-1-146606") == "0-1-146606"


def test_a_split_transaction_whose_counts_never_meet_is_finished_after_the_deadline() -> None:
    """Records that never reach the topic (filtered by the connector) must not hold every later
    transaction behind this END forever."""
    f, g = Feed(), gate(max_wait_s=30)
    g.offer([f.begin("t1"), f.rec(ORDERS, "t1"), f.end("t1", orders=2)], 0.0)
    g.offer([f.begin("t2"), f.rec(ORDERS, "t2"), f.end("t2", orders=1)], 0.0)
    out = g.release(31.0)
    assert [s.key for s in out.splits] == ["t1", "t2"]  # both waited too long: applied in parts
    assert offsets(out.records) == [(ORDERS, 0), (ORDERS, 1)]
    assert out.marks == [(TX, 0, 0)]  # t1's END still waits for its second record
    out = g.release(62.0)
    assert out.finished == ["t1", "t2"]
    assert out.marks == [(TX, 0, 1), (TX, 0, 2), (TX, 0, 3)]
