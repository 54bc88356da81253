"""Demo latency matching: a change is visible at the first sink write of its key at its position or newer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.cdc import ChangeEvent, Op, SourceKind, SourcePosition
from streams.demo.latency import Applied, VisibilityIndex, commit_time, latency_stats, percentile
from streams.demo.offsets import TopicCounts

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _pos(n: int) -> bytes:
    return SourcePosition(SourceKind.POSTGRES, (n, n, 1)).to_bytes()


def test_visibility_uses_the_earliest_write_at_or_after_the_position() -> None:
    index = VisibilityIndex(
        [
            Applied("public.t", ("1",), _pos(10), T0 + timedelta(seconds=5)),
            Applied("public.t", ("1",), _pos(30), T0 + timedelta(seconds=3)),
            Applied("public.t", ("1",), _pos(20), T0 + timedelta(seconds=4)),
        ]
    )
    assert index.visible_at("public.t", ("1",), _pos(10)) == T0 + timedelta(seconds=3)
    assert index.visible_at("public.t", ("1",), _pos(25)) == T0 + timedelta(seconds=3)
    assert index.visible_at("public.t", ("1",), _pos(31)) is None
    assert index.visible_at("public.t", ("2",), _pos(1)) is None


def test_commit_time_prefers_the_stamp_and_falls_back_to_source_ts_for_deletes() -> None:
    stamp = "2026-01-01T00:00:01.123456Z"
    src = T0 + timedelta(seconds=9)
    upd = ChangeEvent(Op.UPDATE, None, {"updated_at": stamp}, {}, None, src, None)
    dele = ChangeEvent(Op.DELETE, {"updated_at": stamp}, None, {}, None, src, None)
    assert commit_time(upd) == T0 + timedelta(seconds=1, microseconds=123456)
    assert commit_time(dele) == src


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    stats = latency_stats([0.1, 0.2, 0.3], unmatched=2)
    assert (stats.measured, stats.unmatched, stats.p50_ms, stats.max_ms) == (3, 2, 200.0, 300.0)


def test_topic_counts_split_changes_outbox_domain_and_dead_letters() -> None:
    before = {("customers.public.customers", 0): 10, ("domain.customers.customer", 0): 5}
    after = {
        ("customers.public.customers", 0): 25,
        ("customers.transaction", 0): 40,
        ("orders.orders.orders", 0): 7,
        ("orders.schema-history", 0): 3,
        ("outbox.event.order", 0): 4,
        ("domain.customers.customer", 0): 9,
        ("customers.public.customers.dlq", 0): 1,
    }
    counts = TopicCounts.between(before, after, ("customers.", "orders."))
    assert counts == TopicCounts(captured=22, outbox=4, domain=4, dead_letters=1)


def test_by_stage_splits_capture_from_apply_and_reports_each_table() -> None:
    from streams.demo.measure import by_stage
    from streams.sinks import Column, TableMapping

    mapping = TableMapping("public.c", "c_view", [Column("id", type="bigint")], key=["id"], sink_schema="s")
    other = TableMapping("public.o", "o_view", [Column("id", type="bigint")], key=["id"], sink_schema="s")

    def change(cid: int, lsn: int, captured_s: float) -> ChangeEvent:
        stamp = T0 + timedelta(seconds=cid)  # committed at T0 + cid s
        row = {"id": cid, "updated_at": stamp}
        return ChangeEvent(Op.UPDATE, None, row, {}, stamp + timedelta(seconds=captured_s), stamp,
                           SourcePosition(SourceKind.POSTGRES, (lsn, lsn, 1)))  # fmt: skip

    events = {"public.c": [change(1, 10, 0.1), change(2, 20, 0.3), change(3, 30, 0.2)]}
    applied = [
        Applied("s.c_view", ("1",), _pos(10), T0 + timedelta(seconds=1.5)),  # 0.1 capture + 0.4 apply
        Applied("s.c_view", ("2",), _pos(20), T0 + timedelta(seconds=3)),  # 0.3 + 0.7
        # key 3 never applied: unmatched, in no stage
    ]
    stages = by_stage([mapping, other], events, applied)
    assert list(stages) == ["capture", "apply", "s.c_view", "s.o_view"]
    assert (stages["capture"].measured, round(stages["capture"].max_ms)) == (2, 300)
    assert (round(stages["apply"].p50_ms), round(stages["apply"].max_ms)) == (400, 700)
    assert (round(stages["s.c_view"].p50_ms), round(stages["s.c_view"].max_ms)) == (500, 1000)
    assert stages["s.o_view"].measured == 0


def test_mariadb_deletes_have_no_commit_time_and_are_counted_as_imprecise() -> None:
    from streams.demo.measure import end_to_end
    from streams.sinks import Column, TableMapping

    mapping = TableMapping("o.orders", "o_view", [Column("id", type="bigint")], key=["id"], sink_schema="s")
    whole = T0 + timedelta(seconds=4)  # binlog timestamps: whole seconds
    gone = ChangeEvent(Op.DELETE, {"id": 1}, None, {"connector": "mariadb"}, whole, whole,
                       SourcePosition(SourceKind.POSTGRES, (10, 10, 1)))  # fmt: skip
    assert commit_time(gone) is None
    stamp = T0 + timedelta(seconds=1)
    src = {"connector": "mariadb"}
    made = ChangeEvent(Op.CREATE, None, {"id": 2, "updated_at": stamp}, src, stamp, whole,
                       SourcePosition(SourceKind.POSTGRES, (20, 20, 1)))  # fmt: skip
    applied = [Applied("s.o_view", ("1",), _pos(10), whole), Applied("s.o_view", ("2",), _pos(20), stamp)]
    stats, _ = end_to_end([mapping], {"o.orders": [gone, made]}, applied)
    assert (stats.measured, stats.unmatched, stats.imprecise) == (1, 0, 1)


def test_mariadb_changes_without_a_stamp_are_imprecise_not_whole_second_latency() -> None:
    """order_lines has no updated_at: its binlog second must not become up to 1 s of latency."""
    whole = T0 + timedelta(seconds=4)
    pos = SourcePosition(SourceKind.POSTGRES, (10, 10, 1))
    row = {"order_id": 1, "line_no": 1}
    line = ChangeEvent(Op.CREATE, None, row, {"connector": "mariadb"}, whole, whole, pos)
    assert commit_time(line) is None
    pg_line = ChangeEvent(Op.CREATE, None, {"id": 1}, {"connector": "postgresql"}, whole, whole, pos)
    assert commit_time(pg_line) == whole  # PostgreSQL's source.ts_ms has milliseconds
