"""Atomic sources in the health views: the scrape parsed, the judgement over time, the page."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from streams.dashboard.atomic import (
    OK,
    STALLED,
    WARN,
    AtomicLimits,
    AtomicRow,
    Reading,
    Watch,
    pending,
    readings,
    warnings,
)
from streams.dashboard.checks import Limits, failing
from streams.dashboard.collect import Snapshot, TableRow, Worker
from streams.dashboard.history import History
from streams.pipeline.atomic import TransactionMetrics

WAIT = {"orders": 30.0}  # the source's max_transaction_wait_s
LIM = AtomicLimits(grace_s=30.0, margin_s=30.0, split_window_s=600.0)


def owned(
    released: float = 0.0, buffered: int = 0, rows: int = 0, owners: int = 1, **splits: float
) -> Reading:
    return Reading(owners, buffered, rows, released, dict(splits))


def one(watch: Watch, at: float, r: Reading) -> AtomicRow:
    [row] = watch.judge(at, WAIT, {"orders": r})
    return row


def test_readings_sum_an_owner_and_a_standby_from_their_real_expositions() -> None:
    owner, standby = CollectorRegistry(), CollectorRegistry()
    a, b = TransactionMetrics(owner), TransactionMetrics(standby)
    a.owner.labels(source="orders").set(1)
    a.buffered.labels(source="orders").set(2)
    a.buffered_rows.labels(source="orders").set(7)
    a.released.labels(source="orders").inc(5)
    a.split.labels(source="orders", reason="wait").inc()
    b.owner.labels(source="orders").set(0)
    got: dict[str, Reading] = {}
    for reg in (owner, standby):
        readings(generate_latest(reg).decode(), got)
    assert got == {
        "orders": Reading(owners=1, buffered=2, buffered_rows=7, released=5.0, splits={"wait": 1.0})
    }


def test_unowned_is_a_stall_only_after_the_grace() -> None:
    w = Watch(LIM)
    assert one(w, 0.0, owned()).state == OK
    assert one(w, 10.0, owned(owners=0)).state == OK  # a handover: a standby retries every 3 s
    assert one(w, 40.0, owned(owners=0)).state == OK  # 30 s unowned: at the grace, not past it
    row = one(w, 41.0, owned(owners=0))
    assert row.state == STALLED
    assert "no worker owns it for 31 s" in row.reason
    assert "changefeed worker" in row.reason
    assert one(w, 42.0, owned()).state == OK  # a standby took over: the clock starts again
    assert one(w, 60.0, owned(owners=0)).state == OK


def test_two_workers_claiming_a_source_is_a_stall_too() -> None:
    w = Watch(LIM)
    one(w, 0.0, owned(owners=2))
    row = one(w, 31.0, owned(owners=2))
    assert row.state == STALLED
    assert "2 workers report owning it" in row.reason


def test_buffered_without_a_release_stalls_after_the_wait_plus_the_margin() -> None:
    w = Watch(LIM)
    assert one(w, 0.0, owned(released=4, buffered=3, rows=40)).state == OK
    assert one(w, 60.0, owned(released=4, buffered=3, rows=40)).state == OK  # 30 s wait + 30 s margin
    row = one(w, 61.0, owned(released=4, buffered=3, rows=40))
    assert row.state == STALLED
    assert "3 transactions (40 rows) buffered, none released for 61 s" in row.reason
    assert "owner's log" in row.reason
    assert one(w, 62.0, owned(released=5, buffered=3)).state == OK  # a release: progress
    assert one(w, 200.0, owned(released=5, buffered=0)).state == OK  # nothing buffered: nothing stuck
    assert one(w, 250.0, owned(released=5, buffered=1)).state == OK  # held 50 s since 200 s


def test_a_source_releasing_under_load_stays_ok_however_long() -> None:
    w = Watch(LIM)
    for i in range(100):
        assert one(w, i * 5.0, owned(released=float(i), buffered=2, rows=9)).state == OK


def test_a_split_warns_for_its_window_and_does_not_fail_health() -> None:
    w = Watch(LIM)
    assert one(w, 0.0, owned(released=1)).state == OK
    row = one(w, 5.0, owned(released=2, wait=1.0))
    assert row.state == WARN
    assert row.splits == 1
    assert "1 transactions applied in parts (wait 1)" in row.reason
    assert one(w, 605.0, owned(released=3, wait=1.0)).state == WARN
    assert one(w, 606.0, owned(released=3, wait=1.0)).state == OK  # no new split in 10 minutes
    s = Snapshot(0.0, "grp", workers=[Worker("w", "h", [])])
    s.atomic = [row]
    assert failing(s, Limits()) == []
    assert warnings(s.atomic) == [f"atomic source orders: {row.reason}"]


def test_splits_seen_at_the_first_look_warn() -> None:
    """A fresh watch (``changefeed health``) cannot know when they happened: say so."""
    row = one(Watch(LIM), 0.0, Reading(1, 0, 0, 9.0, {"rows": 2.0}))
    assert row.state == WARN
    assert "(rows 2)" in row.reason


def test_a_stall_is_a_failing_health_line() -> None:
    w = Watch(LIM)
    one(w, 0.0, owned(owners=0))
    s = Snapshot(0.0, "grp", workers=[Worker("w", "h", [])])
    s.atomic = w.judge(31.0, WAIT, {})  # no worker's scrape names the source at all
    [line] = failing(s, Limits())
    assert line.startswith("atomic source orders: STALLED, no worker owns it for 31 s")


def test_pending_until_a_second_look_decides() -> None:
    w = Watch(LIM)
    assert not pending(w, w.judge(0.0, WAIT, {"orders": owned(released=1)}))
    assert pending(w, w.judge(1.0, WAIT, {"orders": owned(owners=0)}))  # handover or stall?
    assert not pending(w, w.judge(2.0, WAIT, {"orders": owned(released=1)}))
    w2 = Watch(LIM)
    assert pending(w2, w2.judge(0.0, WAIT, {"orders": owned(released=1, buffered=2)}))  # one look
    assert not pending(w2, w2.judge(1.0, WAIT, {"orders": owned(released=2, buffered=2)}))  # released
    assert pending(w2, w2.judge(2.0, WAIT, {"orders": owned(released=2, buffered=2)}))


def test_page_shows_each_atomic_source() -> None:
    from streams.dashboard.page import live

    s = Snapshot(0.0, "grp")
    s.tables = [TableRow("public.t", ["p.public.t"], 0, 0, 0.0, 0, 0, "-")]
    assert "data-atomic" not in live(s, History())  # no atomic source: no empty panel
    s.atomic = [
        AtomicRow("orders", OK, 1, 3, 40, 12.0, 0),
        AtomicRow("<pay>", STALLED, 0, 0, 0, 0.0, 0, "no worker owns it for 31 s"),
    ]
    html = live(s, History())
    assert '<tr data-atomic="orders">' in html
    assert '<td data-field="owned">yes</td>' in html
    assert '<td data-field="buffered">3</td><td data-field="buffered_rows">40</td>' in html
    assert '<tr data-atomic="&lt;pay&gt;">' in html
    assert '<td data-field="owned" class="bad">no</td>' in html
    assert '<td data-field="state" class="bad">STALLED</td>' in html


async def test_the_dashboard_judges_each_look_with_one_watch() -> None:
    """The server keeps one ``Watch`` across looks: a source unowned on every look turns STALLED
    once its looks span the grace (one look alone never could)."""
    import asyncio
    from collections.abc import Sequence

    from streams.dashboard.server import Dashboard
    from streams.settings import Settings

    clock = iter([0.0, 10.0, 31.0, *range(32, 400)])

    def reader(settings: Settings, urls: Sequence[str], schema: str | None, slow: bool) -> Snapshot:
        s = Snapshot(next(clock), "grp", atomic_declared=dict(WAIT))
        s.atomic_readings = {"orders": owned(owners=0)}
        return s

    board = Dashboard(Settings(), interval_s=0.0, reader=reader)
    task = asyncio.create_task(board.collect_forever())
    try:
        snap = await asyncio.wait_for(board.newer(0), 10)
        while snap.at < 31.0:  # each look judged by the same watch, whichever the page sees
            snap = await asyncio.wait_for(board.newer(board.version), 10)
    finally:
        task.cancel()
    assert snap.atomic[0].state == STALLED  # unowned since the look at 0 s: past the 30 s grace
    assert f"no worker owns it for {snap.at:.0f} s" in snap.atomic[0].reason
