"""E5, E4 (worker side): poison on every topic kind and records of several MiB, on the fault stack.

E5: poison on the customers and orders change topics and on the order outbox — including a
record with neither key nor value, which Python clients refuse to send and the broker takes —
is dead-lettered exactly once per source offset although the batch holding it is redelivered
twice (its worker SIGKILLed between the dead letters and the sink commit), while everything
else flows. E4: a 2 MiB undecodable record is dead-lettered whole, one at the broker's limit is
dead-lettered truncated with a marker, and a 2 MiB domain event (a customer with a 2 MiB first
name, inserted in the source database) is published.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.demo.project.customers import TOPIC as CUSTOMERS_EVENTS
from streams.pipeline.deadletter import record_size
from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.sinks.flush import partition_lock_keys
from tests.faults.crafting import CUSTOMERS_TOPIC, read_topic, truncated, wrong_magic
from tests.faults.pipeline import FaultPipeline, fault_pipeline
from tests.polling import poll

__all__ = ["fault_pipeline"]
ORDERS_TOPIC = "orders.orders.orders"
OUTBOX_TOPIC = "outbox.event.order"
APPLY_TIMEOUT_S = 180.0
MiB = 1024 * 1024


def _producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        acks="all",
        max_request_size=settings.kafka.max_message_bytes + MiB,
    )


def _send(
    settings: Settings, sends: list[tuple[str, bytes | None, bytes | None]]
) -> list[tuple[str, int, int]]:
    p = _producer(settings)
    try:
        metas = [p.send(t, key=k, value=v).get(60) for t, k, v in sends]
    finally:
        p.close(5)
    return [(m.topic, m.partition, m.offset) for m in metas]


def _send_null(settings: Settings, topic: str) -> tuple[str, int, int]:
    """A record with neither key nor value (only the batch API lets a Python client send one)."""

    async def send() -> tuple[str, int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
        await producer.start()
        try:
            batch = producer.create_batch()
            batch.append(key=None, value=None, timestamp=None)
            batch.close()
            meta = await (await producer.send_batch(batch, topic, partition=0))
            return topic, int(meta.partition), int(meta.offset)
        finally:
            await producer.stop()

    return asyncio.run(send())


def _first_value(fp: FaultPipeline, topic: str) -> bytes:
    for m in read_topic(fp.settings, topic):
        if m.value is not None and len(m.value) > 16:
            return m.value
    raise AssertionError(f"no record on {topic}")


def _origins(fp: FaultPipeline, topics: list[str]) -> list[tuple[str, int, int]]:
    return sorted(
        (d.why["source_topic"], int(d.why["source_partition"]), int(d.why["source_offset"]))
        for t in topics
        for d in fp.dlq_records(t)
    )


def _mentions(logs: str, origin: tuple[str, int, int]) -> int:
    """How many workers handled this record: each either dead-lettered it or found it done."""
    t, p, o = origin
    at = f"{t}[{p}]@{o}"
    return sum(
        1 for line in logs.splitlines() if f"dead-lettering {at} " in line or f"{at} is already in" in line
    )


@pytest.fixture
def held_partitions(fault_pipeline: FaultPipeline) -> Iterator[psycopg.Connection[Any]]:
    """A session that can hold the sink's partition locks (every flush of them then waits)."""
    with psycopg.connect(conninfo_from(fault_pipeline.settings.sink_postgres), autocommit=True) as conn:
        yield conn
        conn.execute("SELECT pg_advisory_unlock_all()")


@pytest.mark.scenario("E5")
@pytest.mark.timeout(900)
def test_poison_on_every_topic_kind_is_dead_lettered_once_however_often_redelivered(
    fault_pipeline: FaultPipeline, held_partitions: psycopg.Connection[Any], scenario_numbers: dict[str, Any]
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    topics = [CUSTOMERS_TOPIC, ORDERS_TOPIC, OUTBOX_TOPIC]
    fp.wait_quiet()
    with fp.workers() as ws:  # earlier scenarios' backlog first: only our poison is in flight
        ws.start_one()
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
    dlq_before = fp.dlq_counts()
    locks = partition_lock_keys("public", list(fp.end_offsets(topics)))
    held_partitions.execute(
        "SELECT pg_advisory_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) k", [locks]
    )
    customers, orders = _first_value(fp, CUSTOMERS_TOPIC), _first_value(fp, ORDERS_TOPIC)
    injected = _send(
        fp.settings,
        [
            (CUSTOMERS_TOPIC, b"\x00\x00\x00\x00\x01", truncated(customers)),
            (ORDERS_TOPIC, None, wrong_magic(orders)),
            (OUTBOX_TOPIC, b"order-e5", b'{"not": "avro"}'),
        ],
    )
    injected.append(_send_null(fp.settings, OUTBOX_TOPIC))  # issue 12/1: retried forever
    with fp.workers() as ws:
        load = fp.start_load(rate=20, duration_s=20)
        workers = 3  # each dies with its first batch's flush waiting on the held locks
        for n in range(workers):
            worker = ws.start_one()
            if n < workers - 1:
                # A first batch may hold only some partitions (their positions resolve one by one);
                # whatever it held, its dead letters were sent before that flush began to wait.
                poll(lambda w=worker: "still running after" in w.text(), 120, "a flush waiting on the locks")
                ws.kill(worker)
        started = time.monotonic()
        held_partitions.execute("SELECT pg_advisory_unlock_all()")
        load.result(120)
        fp.wait_lag_zero(APPLY_TIMEOUT_S, workers=ws)
        numbers["lag0_after_release_s"] = round(time.monotonic() - started, 1)
        ws.check_alive()
        letters = _origins(fp, topics)
        logs = "\n".join(w.text() for w in ws.procs)
        handled = {o: _mentions(logs, o) for o in injected}  # deliveries that reached each record
        numbers.update(
            {
                "injected": len(injected),
                "workers": workers,
                "deliveries_per_record": sorted(handled.values()),
                "dead_letters_of_injected": sum(1 for o in letters if o in set(injected)),
                "skipped_as_already_dead_lettered": logs.count("is already in"),
            }
        )
        fp.oracle(numbers, dlq_before=dlq_before, injected_dead_letters=len(injected))
    assert numbers["dead_letters_of_injected"] == len(injected)  # each exactly once (the oracle: 4)
    assert max(handled.values()) >= 2, "no poison record was redelivered"
    null_letters = [d for d in fp.dlq_records(OUTBOX_TOPIC) if d.why.get("null_value") == "true"]
    assert [(d.key, d.value) for d in null_letters[-1:]] == [(None, b"")]


@pytest.mark.scenario("E4")
@pytest.mark.timeout(900)
def test_records_and_events_of_several_mib_pass_the_worker(
    fault_pipeline: FaultPipeline, scenario_numbers: dict[str, Any]
) -> None:
    fp, numbers, s = fault_pipeline, scenario_numbers, fault_pipeline.settings
    dlq_before = fp.dlq_counts()
    two = b"\x07" + os.urandom(2 * MiB)
    near = b"\x07" + os.urandom(s.kafka.max_message_bytes - record_size(b"e4", b"", []) - 64)
    events_before = fp.end_offsets([CUSTOMERS_EVENTS])
    email = f"e4-{uuid.uuid4().hex[:8]}@faults.test"
    with fp.workers() as ws:
        ws.start_one()
        injected = _send(s, [(CUSTOMERS_TOPIC, b"e4", two), (CUSTOMERS_TOPIC, b"e4", near)])
        with psycopg.connect(conninfo_from(s.source_postgres), autocommit=True) as source:
            source.execute(
                "INSERT INTO public.customers (email, first_name, last_name) VALUES (%s, %s, 'E4')",
                [email, "N" * (2 * MiB)],
            )
        fp.wait_lag_zero(APPLY_TIMEOUT_S, workers=ws)
        ws.check_alive()
        fp.oracle(numbers, dlq_before=dlq_before, injected_dead_letters=2)
    by_offset = {
        int(d.why["source_offset"]): d for d in fp.dlq_records(CUSTOMERS_TOPIC) if d.why.get("source_offset")
    }
    whole, head = by_offset[injected[0][2]], by_offset[injected[1][2]]
    assert whole.value == two
    assert head.value is not None
    assert near.startswith(head.value)
    assert int(head.why["truncated"]) == len(near)
    assert head.why["value_sha256"] == hashlib.sha256(near).hexdigest()
    c = KafkaConsumer(
        bootstrap_servers=s.kafka.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=10 * MiB,
        fetch_max_bytes=64 * MiB,
    )
    try:
        tps = [TopicPartition(t, p) for t, p in events_before]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, events_before[(tp.topic, tp.partition)])
        sizes: list[int] = []

        def published() -> bool:
            sizes.extend(len(r.value) for rs in c.poll(1000).values() for r in rs if len(r.value) > 2 * MiB)
            return bool(sizes)

        poll(published, 60, "the 2 MiB CustomerRegistered event")
    finally:
        c.close()
    numbers.update(
        {
            "dead_lettered_whole_bytes": len(whole.value or b""),
            "dead_lettered_truncated_bytes": len(head.value),
            "original_bytes": len(near),
            "domain_event_bytes": max(sizes),
        }
    )
