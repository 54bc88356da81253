"""The dashboard's pure parts: rates and quantiles from history, the checks, the rendered page."""

from __future__ import annotations

import math

import pytest

from streams.dashboard.checks import Limits, failing
from streams.dashboard.collect import Connector, Snapshot, Source, TableRow, Worker, assigned, latency_buckets
from streams.dashboard.history import History, quantile
from streams.dashboard.page import live, page

INF = math.inf


def snap(at: float, applied: int = 0, lag: int = 0, lag_s: float = 0.0, **kw: object) -> Snapshot:
    s = Snapshot(at, "grp", **kw)  # type: ignore[arg-type]
    if not s.tables:
        s.tables = [TableRow("public.t", ["p.public.t"], applied, lag, lag_s, 0, 0, "postgres:1/1/1")]
    return s


def test_quantile_interpolates_inside_the_bucket() -> None:
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, INF: 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.3)
    assert quantile(0.99, buckets) == pytest.approx(0.95)
    assert quantile(0.5, {0.1: 0.0, INF: 0.0}) is None
    assert quantile(0.99, {0.1: 1.0, INF: 2.0}) == 0.1  # beyond the last finite bound


def test_rate_and_latency_over_their_windows() -> None:
    h = History()
    h.add(snap(1000.0, applied=100, latency_buckets={"public.t": {0.1: 10.0, 1.0: 10.0, INF: 10.0}}))
    assert h.rate("public.t") is None  # one look is no rate
    h.add(snap(1010.0, applied=300, latency_buckets={"public.t": {0.1: 10.0, 1.0: 30.0, INF: 30.0}}))
    assert h.rate("public.t") == pytest.approx(20.0)
    p50, p99 = h.latency("public.t")
    # only the 20 applied in the window, all between 0.1 and 1.0 s
    assert p50 is not None
    assert 0.1 < p50 < 1.0
    assert p99 is not None
    assert p99 <= 1.0
    ((at, rate, lag),) = h.series()
    assert (at, round(rate, 6), lag) == (1010.0, 20.0, 0)


def test_a_worker_restart_does_not_make_negative_latency_counts() -> None:
    h = History()
    h.add(snap(0.0, latency_buckets={"public.t": {0.1: 100.0, INF: 100.0}}))
    h.add(snap(70.0, latency_buckets={"public.t": {0.1: 0.0, 1.0: 4.0, INF: 4.0}}))
    p50, _ = h.latency("public.t")
    assert p50 is not None
    assert 0.1 < p50 <= 1.0


def test_history_keeps_fifteen_minutes() -> None:
    h = History()
    for i in range(0, 2000, 100):
        h.add(snap(float(i), applied=i))
    assert h.points[0].at >= 1900 - 900


def test_checks_name_each_failure_on_one_line() -> None:
    s = snap(0.0, lag=12, lag_s=300.0)
    s.connectors = [
        Connector("a", "RUNNING", [(0, "RUNNING")]),
        Connector("b", "PAUSED", [(0, "PAUSED")]),
        Connector("c", "FAILED", [(0, "FAILED")], "task 0: boom (permanent)"),
        Connector("theirs", "FAILED", [(0, "FAILED")], "task 0: not ours"),
    ]
    s.project_connectors = ["a", "b", "c", "gone"]
    s.sources = [Source("slot x", "slot", 5 * 1024**3, "inactive")]
    s.problems = [
        "connector c FAILED — task 0: boom (permanent)",
        "connector theirs FAILED — task 0: not ours",
        "source source_mariadb (h:1/db) unreachable: refused",
    ]
    lines = failing(s, Limits(max_lag_s=60, max_slot_bytes=1024**3, min_workers=1))
    assert lines == [
        "capture: source source_mariadb (h:1/db) unreachable: refused",
        "connector b: PAUSED (0=PAUSED), nothing is captured",
        "connector c: FAILED — task 0: boom (permanent)",
        "connector gone: not on the Connect cluster (changefeed connectors apply)",
        "lag public.t: 12 events, oldest 300 s old (limit 60 s)",
        "slot x: retains 5.0 GiB of WAL (limit 1.0 GiB)",
        "workers: 0 in group grp (need 1)",
    ]
    healthy = snap(0.0, lag=3, lag_s=2.0)
    healthy.workers = [Worker("w", "127.0.0.1", ["p.public.t[0]"])]
    assert failing(healthy, Limits()) == []


def test_group_members_partitions_from_the_decoded_assignment() -> None:
    member = {"member_assignment": {"assigned_partitions": [{"topic": "t", "partitions": [1, 0]}]}}
    assert assigned(member) == ["t[0]", "t[1]"]
    assert assigned({"member_assignment": b""}) == []


def test_latency_buckets_from_a_scrape() -> None:
    text = (
        "# TYPE changefeed_end_to_end_latency_seconds histogram\n"
        'changefeed_end_to_end_latency_seconds_bucket{le="0.1",table="s.t"} 3.0\n'
        'changefeed_end_to_end_latency_seconds_bucket{le="+Inf",table="s.t"} 5.0\n'
        'changefeed_end_to_end_latency_seconds_count{table="s.t"} 5.0\n'
        'changefeed_end_to_end_latency_seconds_sum{table="s.t"} 1.0\n'
    )
    assert latency_buckets(text) == {"s.t": {0.1: 3.0, INF: 5.0}}


def test_page_shows_every_connector_table_and_number_escaped() -> None:
    h = History()
    s = snap(0.0, applied=10, lag=4, lag_s=2.5)
    s.connectors = [Connector("<x>", "FAILED", [(0, "FAILED")], "task 0: boom")]
    s.workers = [Worker("w-1", "127.0.0.1", ["p.public.t[0]"])]
    h.add(s)
    html = page(s, h)
    assert '<tr data-connector="&lt;x&gt;">' in html
    assert 'class="state failed">FAILED<' in html
    assert '<tr data-table="public.t">' in html
    assert '<td data-field="lag_events" class="warn">4</td>' in html
    assert '<td data-field="lag_seconds" class="warn">2.5 s</td>' in html
    assert "p.public.t[0]" in html
    assert "<x>" not in html
    assert live(s, h) in html


def test_a_quantile_in_the_overflow_bucket_reads_as_a_lower_bound() -> None:
    from streams.dashboard.page import _ms

    assert _ms(None) == "–"
    assert _ms(0.081) == "81 ms"
    # histogram_quantile answers the last finite bound when the rank is past it: not a measurement.
    assert _ms(300.0) == "> 300 s"
