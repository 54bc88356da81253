"""Issue 17: the worker's metrics and probes, scraped from a real worker under load.

A scratch project of its own (source schema, connector, sink schema, consumer group, metrics
port): 4000 rows wait in Kafka before the worker starts, in batches of 100, so it has lag to
work off; then live inserts, a replayed old change (a conflict) and a poison record (a dead
letter). Every new metric must appear with bounded labels and plausible values: lag > 0 while
catching up and 0 after, latency buckets filled, conflicts and dead letters per table, the
slot's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams.codecs import AvroDecoder
from streams.registry.client import RegistryClient
from streams.settings import Settings
from tests.integration.project.scratch_project import ScratchProject
from tests.polling import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BACKLOG = 4000
LIVE = 200
# The only labels a worker may put on a series (no keys, ids or offsets).
ALLOWED_LABELS = {
    "topic",
    "partition",
    "table",
    "source_table",
    "reason",
    "slot",
    "form",
    "column",
    "action",
    "le",
}


@pytest.fixture
def project(settings: Settings, tmp_path: Path) -> Iterator[ScratchProject]:
    p = ScratchProject(settings, tmp_path, "opm")
    p.env["CHANGEFEED_PIPELINE__MAX_BATCH"] = "100"
    try:
        yield p
    finally:
        p.close()


def scrape(p: ScratchProject) -> dict[str, list[tuple[dict[str, str], float]]]:
    try:
        text = httpx.get(f"http://127.0.0.1:{p.metrics_port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


def first_record(p: ScratchProject, topic: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    consumer = KafkaConsumer(bootstrap_servers=p.settings.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        batch = poll(lambda: consumer.poll(timeout_ms=1000, max_records=1), 30, "the topic's first record")
        (record,) = next(iter(batch.values()))
        return record.key, record.value, list(record.headers or [])
    finally:
        consumer.close()


def produce(
    p: ScratchProject, topic: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
) -> None:
    producer = KafkaProducer(bootstrap_servers=p.settings.kafka.bootstrap_servers)
    try:
        for key, value, headers in records:
            producer.send(topic, key=key, value=value, headers=headers, partition=0)
        producer.flush(30)
    finally:
        producer.close()


def test_worker_metrics_under_load(project: ScratchProject) -> None:
    p = project
    s = p.pg_schema
    p.pg_tables({"items": "id bigint PRIMARY KEY, note text NOT NULL"})
    p.tables_file(f'[[tables]]\nsource = "{s}.items"\nsink = "items"\n')
    with p.pg() as pg:  # waiting in the source, snapshotted into Kafka before the worker reads
        pg.execute(f"INSERT INTO \"{s}\".items SELECT g, 'backlog' FROM generate_series(1, {BACKLOG}) g")
    p.start()
    table = f"{p.sink_schema}.items"
    lag_seen: list[float] = []

    def caught_up() -> bool:
        m = scrape(p)
        lag_seen.append(total(m, "changefeed_partition_lag_events"))
        return len(p.sink_rows("items", "id")) == BACKLOG

    poll(caught_up, 180, "the backlog in the sink", interval_s=0.1)
    with p.pg() as pg:  # live changes: their latency is source commit → sink commit
        for i in range(LIVE):
            pg.execute(f"INSERT INTO \"{s}\".items VALUES (%s, 'live')", [BACKLOG + 1 + i])
    poll(lambda: len(p.sink_rows("items", "id")) == BACKLOG + LIVE, 120, "the live rows in the sink")

    def settled() -> dict[str, list[tuple[dict[str, str], float]]] | None:
        m = scrape(p)
        done = total(m, "changefeed_end_to_end_latency_seconds_count", table=table) >= BACKLOG + LIVE
        return m if done and total(m, "changefeed_partition_lag_events") == 0 else None

    m = poll(settled, 60, "the latency count of every row and lag 0")
    assert max(lag_seen) > 0, f"lag never seen above 0 while catching up: {lag_seen[:20]}"

    topic = f"{p.pg_prefix}.{s}.items"
    # A conflict and a dead letter, per table: the first change record again after a newer
    # change of its row (the version guard refuses it), and a record that is not Avro at all.
    key, value, headers = first_record(p, topic)
    row_id = AvroDecoder(RegistryClient(p.settings.registry.url)).decode(key)["id"]
    with p.pg() as pg:
        pg.execute(f"UPDATE \"{s}\".items SET note = 'newer' WHERE id = %s", [row_id])
    poll(lambda: p.sink_rows("items", "note", f"id = {int(row_id)}") == [("newer",)], 60, "the newer change")
    produce(p, topic, [(key, value, headers), (key, b"not avro", [])])

    def guarded() -> dict[str, list[tuple[dict[str, str], float]]] | None:
        m = scrape(p)
        conflicts = total(m, "changefeed_conflicts_total", table=table)
        dead = total(m, "changefeed_table_dead_lettered_total", source_table=f"{s}.items")
        return (
            m if conflicts >= 1 and dead == 1 and total(m, "changefeed_partition_lag_events") == 0 else None
        )

    m = poll(guarded, 60, "the conflict and the dead letter counted for the table")
    assert {lab["topic"] for lab, _ in m["changefeed_partition_lag_events"]} == {topic}
    assert {lab["partition"] for lab, _ in m["changefeed_partition_lag_seconds"]} == {"0"}
    assert total(m, "changefeed_partition_lag_seconds") == 0
    # latency buckets filled: the live rows took well under a minute, all counted per table
    buckets = {
        lab["le"]: v for lab, v in m["changefeed_end_to_end_latency_seconds_bucket"] if lab["table"] == table
    }
    assert buckets["+Inf"] >= BACKLOG + LIVE
    assert buckets["60.0"] >= LIVE
    assert total(m, "changefeed_flush_latency_seconds_count") >= BACKLOG // 100
    batches = {lab["le"]: v for lab, v in m["changefeed_batch_records_bucket"]}
    assert batches["100.0"] == batches["+Inf"] > 0  # max_batch 100: no batch larger
    assert total(m, "changefeed_rebalances_total") >= 1
    assert total(m, "changefeed_assigned_partitions") == 1
    # (the older applied counter labels the bare table name; the new series qualify it, as the
    # conflict and missing-column counters do)
    assert total(m, "changefeed_events_applied_total", table="items") >= BACKLOG + LIVE + 1
    assert {lab["reason"] for lab, _ in m["changefeed_conflicts_total"]}, m["changefeed_conflicts_total"]
    assert total(m, "changefeed_source_slots_up") == 1
    assert [lab for lab, _ in m["changefeed_source_slot_retained_bytes"] if lab["slot"] == p.slot]
    # bounded labels only; no label value is a row key or an offset
    for name, samples in m.items():
        if not name.startswith("changefeed_"):
            continue
        for labels, _ in samples:
            assert set(labels) <= ALLOWED_LABELS, (name, labels)
            assert not any(re.fullmatch(r"\d{3,}", v) for v in labels.values()), (name, labels)
    # the probes on the same port
    base = f"http://127.0.0.1:{p.metrics_port}"
    assert httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    assert httpx.get(f"{base}/readyz", timeout=2).text.strip() == "ok"
