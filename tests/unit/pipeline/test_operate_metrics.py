"""Issue 17's worker metrics and probes, as pure functions of what a batch did."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client import generate_latest

from streams.connect.health import SlotHealth
from streams.pipeline.metrics import PipelineMetrics, source_table_of
from streams.pipeline.probes import Probes, serve_probes
from streams.pipeline.slot_metrics import SlotCollector
from streams.sinks import FlushResult


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: int  # ms


def sample(m: PipelineMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_lag_latency_and_batch_size_after_a_flush() -> None:
    m = PipelineMetrics()
    ten_s_ago = int((time.time() - 10) * 1000)
    records = [Rec("p.s.t", 0, 4, ten_s_ago), Rec("p.s.t", 1, 9, ten_s_ago)]
    committed = datetime.now(UTC) - timedelta(seconds=2)
    writes = [
        SimpleNamespace(
            mapping=SimpleNamespace(sink_schema="sk", sink_table="t"),
            event=SimpleNamespace(source_ts=committed),
        )
    ]
    pending = m.pending(writes)
    ends = {("p.s.t", 0): 5, ("p.s.t", 1): 25}
    m.observe_applied(
        records, pending, FlushResult(offsets={("p.s.t", 0): 5, ("p.s.t", 1): 10}), lambda t, p: ends[(t, p)]
    )
    assert sample(m, "changefeed_partition_lag_events", topic="p.s.t", partition="0") == 0
    assert sample(m, "changefeed_partition_lag_seconds", topic="p.s.t", partition="0") == 0
    assert sample(m, "changefeed_partition_lag_events", topic="p.s.t", partition="1") == 15
    assert 9 < (sample(m, "changefeed_partition_lag_seconds", topic="p.s.t", partition="1") or 0) < 60
    assert sample(m, "changefeed_end_to_end_latency_seconds_count", table="sk.t") == 1
    assert sample(m, "changefeed_end_to_end_latency_seconds_bucket", table="sk.t", le="1.0") == 0
    assert sample(m, "changefeed_end_to_end_latency_seconds_bucket", table="sk.t", le="2.5") == 1
    assert sample(m, "changefeed_batch_records_count") == 1


def test_unknown_high_water_sets_no_lag() -> None:
    m = PipelineMetrics()
    m.observe_applied([Rec("p.s.t", 0, 1, 0)], {}, FlushResult(offsets={("p.s.t", 0): 2}), lambda t, p: None)
    assert sample(m, "changefeed_partition_lag_events", topic="p.s.t", partition="0") is None


def test_revoked_partitions_stop_reporting_lag_and_rebalances_count() -> None:
    m = PipelineMetrics()
    m.observe_assigned([("p.s.t", 0), ("p.s.t", 1)], 2)
    m.observe_applied([], {}, FlushResult(offsets={("p.s.t", 0): 2, ("p.s.t", 1): 2}), lambda t, p: 3)
    m.observe_revoked([("p.s.t", 1), ("p.s.t", 7)], 1)
    assert sample(m, "changefeed_partition_lag_events", topic="p.s.t", partition="0") == 1
    assert sample(m, "changefeed_partition_lag_events", topic="p.s.t", partition="1") is None
    assert sample(m, "changefeed_rebalances_total") == 1
    assert sample(m, "changefeed_assigned_partitions") == 1


def test_dead_letters_count_per_source_table() -> None:
    m = PipelineMetrics()
    m.observe_dead_letter("customers.public.customers")
    assert source_table_of("orders.orders.order_lines") == "orders.order_lines"
    assert sample(m, "changefeed_table_dead_lettered_total", source_table="public.customers") == 1


def test_slot_collector_exports_bytes_and_survives_an_unreachable_source() -> None:
    m = PipelineMetrics()
    down = False

    def read() -> list[SlotHealth]:
        if down:
            raise OSError("source down")
        return [SlotHealth("s1", True, "reserved", 4096, 128)]

    m.registry.register(SlotCollector(read, min_interval_s=0))
    assert sample(m, "changefeed_source_slot_retained_bytes", slot="s1") == 4096
    assert sample(m, "changefeed_source_slot_lag_bytes", slot="s1") == 128
    down = True
    text = generate_latest(m.registry).decode()  # the read fails: the scrape still answers
    assert "changefeed_source_slots_up 0.0" in text
    assert "changefeed_source_slot_retained_bytes{" not in text


def test_probes_liveness_and_readiness() -> None:
    now = [100.0]
    p = Probes(stale_after_s=30, clock=lambda: now[0])
    assert p.health() == ""
    assert p.readiness() == "starting"
    p.started = True
    p.polled()
    assert p.readiness() == ""
    now[0] += 31
    assert "has not polled for 31 s" in p.health()
    assert p.readiness() == p.health()
    p.polled()
    p.stopping = True
    assert p.health() == ""
    assert p.readiness() == "stopping"


@pytest.fixture
def served() -> Iterator[tuple[str, Probes]]:
    m = PipelineMetrics()
    server = serve_probes(m.registry, m.probes, 0)
    yield f"http://127.0.0.1:{server.server_port}", m.probes
    server.shutdown()


def test_probes_and_metrics_share_the_port(served: tuple[str, Probes]) -> None:
    url, probes = served
    assert httpx.get(f"{url}/healthz").status_code == 200
    r = httpx.get(f"{url}/readyz")
    assert (r.status_code, r.text.strip()) == (503, "starting")
    probes.started = True
    assert httpx.get(f"{url}/readyz").status_code == 200
    assert "changefeed_rebalances_total" in httpx.get(f"{url}/metrics").text


def test_a_failing_high_water_only_skips_the_lag() -> None:
    m = PipelineMetrics()

    def revoked(topic: str, partition: int) -> int | None:
        raise AssertionError("Partition is not assigned")  # what aiokafka raises

    m.observe_applied([Rec("p.s.t", 0, 1, 0)], {}, FlushResult(offsets={("p.s.t", 0): 2}), revoked)
    assert sample(m, "changefeed_partition_lag_events", topic="p.s.t", partition="0") is None
    assert sample(m, "changefeed_batch_records_count") == 1


def test_a_taken_metrics_port_moves_to_the_next() -> None:
    first = PipelineMetrics()
    server = serve_probes(first.registry, first.probes, 0)
    port = server.server_port
    try:
        second = PipelineMetrics()
        if not second.serve(port, tries=2):
            pytest.skip(f"port {port + 1} is taken by something else")
        assert "changefeed_rebalances_total" in httpx.get(f"http://127.0.0.1:{port + 1}/metrics").text
        assert not PipelineMetrics().serve(port, tries=1)  # only the taken one: a warning, no endpoint
    finally:
        server.shutdown()


def test_batch_observation_exports_what_one_observe_per_value_does() -> None:
    """The end-to-end histogram is fed once per flush; its buckets and sum must not change."""
    from prometheus_client import CollectorRegistry, Histogram

    from streams.pipeline.metrics import LATENCY_BUCKETS, observe_many

    values = [0.0, 0.01, 0.0100001, 0.2, 0.25, 1.0, 7.5, 300.0, 301.0, 0.005] * 3
    one, many = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("lat", "d", ["table"], buckets=LATENCY_BUCKETS, registry=one)
    h2 = Histogram("lat", "d", ["table"], buckets=LATENCY_BUCKETS, registry=many)
    for v in values:
        h1.labels(table="t").observe(v)
    observe_many(h2.labels(table="t"), values)
    observe_many(h2.labels(table="t"), [])

    def samples(r: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name, s.labels, s.value)
            for m in r.collect()
            for s in m.samples
            if not s.name.endswith("_created")
        ]

    assert samples(many) == samples(one)
    assert sample_value(many, "lat_bucket", table="t", le="0.01") == 9  # 0.0, 0.005 and 0.01 itself


def test_pending_groups_latency_samples_by_sink_table() -> None:
    committed = datetime.now(UTC)
    m1 = SimpleNamespace(sink_schema="sk", sink_table="t")
    m2 = SimpleNamespace(sink_schema="sk", sink_table="t")  # another version of the same table
    writes = [
        SimpleNamespace(mapping=m, event=SimpleNamespace(source_ts=ts))
        for m, ts in [(m1, committed), (m2, committed), (m1, None), (m1, committed)]
    ]
    assert PipelineMetrics.pending(writes) == {"sk.t": [committed, committed, committed]}


def sample_value(r: object, name: str, **labels: str) -> float | None:
    from prometheus_client import CollectorRegistry

    assert isinstance(r, CollectorRegistry)
    return r.get_sample_value(name, labels)


def test_pending_keeps_every_sample_across_interleaved_runs_of_mappings() -> None:
    t = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in range(6)]
    a, b = (
        SimpleNamespace(sink_schema="sk", sink_table="a"),
        SimpleNamespace(sink_schema="sk", sink_table="b"),
    )
    a2 = SimpleNamespace(sink_schema="sk", sink_table="a")  # a second version of a's mapping
    order = [(a, t[0]), (a, t[1]), (b, t[2]), (a, t[3]), (b, None), (a2, t[4]), (b, t[5])]
    writes = [SimpleNamespace(mapping=m, event=SimpleNamespace(source_ts=ts)) for m, ts in order]
    # By mapping in first-seen order, each one's samples in arrival order.
    assert PipelineMetrics.pending(writes) == {"sk.a": [t[0], t[1], t[3], t[4]], "sk.b": [t[2], t[5]]}
    assert PipelineMetrics.pending([]) == {}
