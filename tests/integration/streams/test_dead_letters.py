"""Dead letters never block a worker and are written once per source offset (real stack).

Null key + null value on an outbox topic, records of several MiB, domain events of several MiB,
and redelivery after a worker died between the dead letter and the sink commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import urllib.request
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from streams.cdc.topics import OUTBOX_PREFIX
from streams.demo.project.customers import TOPIC as CUSTOMERS_EVENTS
from streams.pipeline import dlq_replay as dlq
from streams.pipeline import parse_headers
from streams.pipeline.deadletter import record_size
from streams.settings import Settings
from streams.sinks.flush import partition_lock_keys
from tests.integration.streams.helpers import Crafter, Worker, end_offsets, stored_offsets
from tests.polling import poll

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[tuple[object, ...]]
MiB = 1024 * 1024
FETCH = {"max_partition_fetch_bytes": 10 * MiB, "fetch_max_bytes": 64 * MiB}
Letter = tuple[dict[str, str], bytes | None, bytes | None]


@pytest.fixture
def outbox(settings: Settings) -> Iterator[str]:
    """A private outbox topic (same routing as ``outbox.event.order``), removed after."""
    name = f"{OUTBOX_PREFIX}.it{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    admin.create_topics([NewTopic(name, 1, 1)])
    yield name
    admin.delete_topics([t for t in admin.list_topics() if t.startswith(name)])
    admin.close()


def caught_up(settings: Settings, sink: Conn, schema: str, group: str, topic: str) -> bool:
    ends = {p: o for p, o in end_offsets(settings, topic).items() if o}
    return stored_offsets(sink, schema, group, topic) == ends


def letters(settings: Settings, topic: str) -> list[Letter]:
    """Every record on ``<topic>.dlq``: (our headers, key, value)."""
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False, **FETCH)
    try:
        dlq = f"{topic}.dlq"
        tps = [TopicPartition(dlq, p) for p in sorted(c.partitions_for_topic(dlq) or ())]
        if not tps:
            return []
        ends = c.end_offsets(tps)
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: list[Letter] = []
        while any(c.position(tp) < ends[tp] for tp in tps):
            for records in c.poll(1000).values():
                out += [(parse_headers(list(r.headers or ())), r.key, r.value) for r in records]
        return out
    finally:
        c.close()


def send_null_record(settings: Settings, topic: str, partition: int) -> None:
    """A record with neither key nor value: Python clients refuse to send one, the broker takes it
    (Kafka's console producer with ``null.marker``, or any producer without the check, writes it)."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
        await producer.start()
        try:
            batch = producer.create_batch()
            batch.append(key=None, value=None, timestamp=None)  # the batch API has no such check
            batch.close()
            await (await producer.send_batch(batch, topic, partition=partition))
        finally:
            await producer.stop()

    asyncio.run(send())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_null_key_and_value_is_dead_lettered_and_every_partition_keeps_flowing(
    settings: Settings,
    sink: Conn,
    schema: str,
    topic: str,
    outbox: str,
    crafter: Crafter,
    workers: Callable[..., Worker],
) -> None:
    group = f"it-{uuid.uuid4().hex[:8]}"
    send_null_record(settings, outbox, 0)  # was retried forever: "Need at least one: key or value"
    _, good = crafter.message(1, 999, "c")
    crafter.send(topic, None, good[:-3], partition=1)  # change-topic poison (null/null: a tombstone)
    for cid in range(1, 31):
        crafter.send(topic, *crafter.message(cid, 1000 + cid, "c"))
    w = workers(group, schema, [topic, outbox])
    poll(lambda: caught_up(settings, sink, schema, group, topic), 90, "every partition to be applied")
    poll(lambda: caught_up(settings, sink, schema, group, outbox), 30, "the outbox to be consumed")
    count = sink.execute(f'SELECT count(*) FROM "{schema}".customer_directory').fetchone()
    assert count == (30,)
    [(why, key, value)] = letters(settings, outbox)
    assert (why["source_topic"], why["error_class"], why["null_value"]) == (outbox, "TransformError", "true")
    assert (key, value) == (None, b"")  # an empty value stands in for the null one
    [(why, key, value)] = letters(settings, topic)
    assert (why["source_topic"], why["source_partition"], key, value) == (topic, "1", None, good[:-3])
    assert "dead-lettered as null_value" in w.text()


def test_records_of_several_mib_are_dead_lettered_and_published(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    group = f"it-{uuid.uuid4().hex[:8]}"
    two = b"\x07" + os.urandom(2 * MiB)  # undecodable (wrong magic byte), over aiokafka's 1 MiB default
    # Fits the broker as produced; with the dead letter's headers added it no longer does.
    room = settings.kafka.max_message_bytes - record_size(b"k8", b"", []) - 64
    near = b"\x07" + os.urandom(room)
    big_cid = 900_000 + int(uuid.uuid4().hex[:4], 16)
    name = "N" * (2 * MiB)  # its CustomerRegistered event is a 2 MiB domain event
    events_before = end_offsets(settings, CUSTOMERS_EVENTS)
    crafter.send(topic, b"k2", two, partition=0)
    crafter.send(topic, b"k8", near, partition=0)
    crafter.send(topic, *crafter.message(big_cid, 5000, "c", first_name=name), partition=1)
    crafter.send(topic, *crafter.message(7, 5001, "c"), partition=0)
    workers(group, schema, [topic])
    poll(lambda: caught_up(settings, sink, schema, group, topic), 120, "the worker to get past every record")
    got = sorted(letters(settings, topic), key=lambda letter: int(letter[0]["source_offset"]))
    assert [why["error_class"] for why, _, _ in got] == ["WireFormatError", "WireFormatError"]
    (first, _, whole), (second, _, head) = got
    assert whole == two
    assert "truncated" not in first
    assert head is not None
    assert int(second["truncated"]) == len(near)
    assert len(head) < len(near)
    assert near.startswith(head)
    assert second["value_sha256"] == hashlib.sha256(near).hexdigest()
    ids = sink.execute(f'SELECT customer_id FROM "{schema}".customer_directory ORDER BY 1').fetchall()
    assert ids == [(7,), (big_cid,)]
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False, **FETCH)
    try:
        tps = [TopicPartition(CUSTOMERS_EVENTS, p) for p in sorted(events_before)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, events_before[tp.partition])

        def published() -> bool:
            return any(
                str(big_cid) in r.key.decode() and len(r.value) > 2 * MiB
                for records in c.poll(1000).values()
                for r in records
            )

        poll(published, 60, "the 2 MiB domain event on the customers topic")
    finally:
        c.close()


def test_redelivered_poison_is_dead_lettered_once_and_a_waiting_flush_is_logged(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    group = f"it-{uuid.uuid4().hex[:8]}"
    key, good = crafter.message(3, 300, "c")
    for cut in (2, 3, 4):  # three poison records on partition 0, fetched together
        crafter.send(topic, key, good[: len(good) // cut], partition=0)
    for cid in range(1, 11):
        crafter.send(topic, *crafter.message(cid, 1000 + cid, "c"))
    # Every flush holding partition 0 now waits: a worker dies between its dead letters and the
    # commit (the other partitions' batches commit, as they would).
    locks = partition_lock_keys(schema, [(topic, 0)])
    with psycopg.connect(sink.info.dsn, password=settings.sink_postgres.password.get_secret_value(),
                         autocommit=True) as holder:  # fmt: skip
        holder.execute("SELECT pg_advisory_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) k", [locks])
        port = free_port()
        first = workers(group, schema, [topic], {"CHANGEFEED_WORKER__METRICS_PORT": str(port)})
        poll(lambda: len(letters(settings, topic)) == 3, 90, "three dead letters")
        poll(lambda: "still running after" in first.text(), 60, "the waiting flush to be logged")
        line = next(x for x in first.text().splitlines() if "still running after" in x)
        assert topic in line
        assert "Lock/advisory" in line
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert f'changefeed_flush_waits_total{{topic="{topic}"}} 1.0' in metrics
        for redelivery in range(2):  # SIGKILL: the batch is redelivered to the next worker
            first.proc.kill()
            first.proc.wait(30)
            first = workers(group, schema, [topic])
            poll(lambda w=first: w.text().count("is already in") == 3, 90, f"redelivery {redelivery + 1}")
        holder.execute("SELECT pg_advisory_unlock_all()")
    poll(lambda: caught_up(settings, sink, schema, group, topic), 90, "the last worker to commit")
    got = letters(settings, topic)
    assert sorted((why["source_partition"], why["source_offset"]) for why, _, _ in got) == [
        ("0", "0"),
        ("0", "1"),
        ("0", "2"),
    ]


def test_replay_skips_letters_whose_bytes_are_not_complete(settings: Settings, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(f"{topic}.dlq", 1, 1)])
    finally:
        admin.close()
    ours = [("cf_source_topic", topic.encode()), ("cf_source_partition", b"0"), ("cf_error_class", b"X")]
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    try:
        for extra, value in (
            ([], b"whole"),
            ([("cf_null_value", b"true")], b""),
            ([("cf_truncated", b"9000000"), ("cf_value_sha256", b"ab")], b"head"),
            ([("cf_payload_dropped", b"MessageSizeTooLargeError")], b""),
        ):
            producer.send(f"{topic}.dlq", key=b"k", value=value, partition=0, headers=ours + extra).get(30)
    finally:
        producer.close(5)
    before = end_offsets(settings, topic)
    done = dlq.replay(settings.kafka, topic)
    assert (done.sent, done.skipped) == (1, 3)
    after = end_offsets(settings, topic)
    assert sum(after.values()) - sum(before.values()) == 1
