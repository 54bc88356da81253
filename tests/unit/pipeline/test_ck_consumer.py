"""The librdkafka adapter's own logic: records, settings, and what a rebalance does (no broker)."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Message
from confluent_kafka import TopicPartition as CkPartition

from streams.pipeline.ck_consumer import NO_OFFSET, CkConsumer, CkRecord, TopicPartition, consumer_config
from streams.pipeline.clients import consumer_kwargs
from streams.settings import KafkaSettings, WorkerSettings


class Client:
    """Stands in for ``confluent_kafka.Consumer``: records what the adapter asks of it."""

    def __init__(self) -> None:
        self.assigned: list[list[tuple[str, int, int]]] = []
        self.unassigned = 0

    def assign(self, parts: list[CkPartition]) -> None:
        self.assigned.append([(p.topic, p.partition, p.offset) for p in parts])

    def unassign(self) -> None:
        self.unassigned += 1

    def subscribe(self, topics: list[str], **callbacks: object) -> None:
        self.subscribed = topics


class Listener:
    """Like ``Rebalance``: seeks the partitions the sink has offsets for, on the event loop."""

    def __init__(self, consumer: CkConsumer, stored: dict[TopicPartition, int], fail: bool = False) -> None:
        self.consumer, self.stored, self.fail = consumer, stored, fail
        self.revoked: list[TopicPartition] = []
        self.lock = asyncio.Lock()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await asyncio.sleep(0)  # a real offset load awaits the sink
        if self.fail:
            msg = "sink away"
            raise RuntimeError(msg)
        for tp in assigned:
            if tp in self.stored:
                self.consumer.seek(tp, self.stored[tp])

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:  # the pipeline's lock: the batch in flight first
            self.revoked += revoked


def adapter(stored: dict[TopicPartition, int], fail: bool = False) -> tuple[CkConsumer, Client, Listener]:
    client = Client()
    c = CkConsumer({}, client=client)  # type: ignore[arg-type]
    listener = Listener(c, stored, fail)
    c.subscribe(pattern="^(t)$", listener=listener)
    return c, client, listener


def parts(*ps: int) -> list[CkPartition]:
    return [CkPartition("t", p) for p in ps]


def test_a_record_has_the_pipelines_record_attributes() -> None:
    m = Message(topic="t", partition=2, offset=7, key=b"k", value=None, headers=None, timestamp=(1, 123))
    r = CkRecord(m)
    assert (r.topic, r.partition, r.offset, r.timestamp, r.key, r.value) == ("t", 2, 7, 123, b"k", None)
    assert r.headers == ()  # None from librdkafka: the loop iterates headers
    with_headers = CkRecord(
        Message(topic="t", partition=0, offset=0, headers=[("h", b"v")], timestamp=(1, 0))
    )
    assert list(with_headers.headers) == [("h", b"v")]


def test_the_topic_partition_equals_aiokafkas() -> None:
    from aiokafka import TopicPartition as AioPartition  # type: ignore[import-untyped]

    assert TopicPartition("t", 1) == AioPartition("t", 1)
    assert AioPartition("t", 1) in {TopicPartition("t", 1)}


def test_the_config_matches_the_aiokafka_consumer_and_stays_eager() -> None:
    kafka, worker = KafkaSettings(max_message_bytes=60 * 1024 * 1024), WorkerSettings(app_id="g")
    ck, aio = consumer_config(kafka, worker), consumer_kwargs(kafka, worker)
    assert ck["group.id"] == aio["group_id"] == "g"
    assert ck["enable.auto.commit"] is aio["enable_auto_commit"] is False
    assert ck["auto.offset.reset"] == aio["auto_offset_reset"] == "earliest"
    assert ck["session.timeout.ms"] == aio["session_timeout_ms"]
    assert ck["max.partition.fetch.bytes"] >= 60 * 1024 * 1024
    assert ck["fetch.max.bytes"] >= 60 * 1024 * 1024
    assert ck["receive.message.max.bytes"] > ck["fetch.max.bytes"]  # librdkafka refuses otherwise
    # aiokafka's default assignor: one group may hold workers of either client.
    assert ck["partition.assignment.strategy"] == "roundrobin"


async def test_assigned_partitions_start_at_the_sinks_offsets_not_after_a_seek() -> None:
    c, client, _ = adapter({TopicPartition("t", 0): 42})
    await c.start()
    # librdkafka runs the callback inside consume, on the adapter's thread.
    await asyncio.to_thread(c._on_assign, client, parts(0, 1))  # type: ignore[arg-type]
    # One assign, with the sink's offset for p0 and "committed, else earliest" for p1.
    assert client.assigned == [[("t", 0, 42), ("t", 1, NO_OFFSET)]]
    assert c.assignment() == {TopicPartition("t", 0), TopicPartition("t", 1)}


async def test_revoke_waits_for_the_batch_in_flight() -> None:
    c, client, listener = adapter({})
    await c.start()
    await asyncio.to_thread(c._on_assign, client, parts(0, 1))  # type: ignore[arg-type]
    async with listener.lock:  # a batch in flight
        revoking = asyncio.create_task(asyncio.to_thread(c._on_revoke, client, parts(0, 1)))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert not revoking.done()
        assert listener.revoked == []
    await revoking
    assert sorted(listener.revoked) == [TopicPartition("t", 0), TopicPartition("t", 1)]
    assert c.assignment() == set()
    assert client.unassigned == 1


async def test_a_failed_offset_load_assigns_nothing_and_fails_the_next_poll() -> None:
    c, client, _ = adapter({}, fail=True)
    await c.start()
    await asyncio.to_thread(c._on_assign, client, parts(0))  # type: ignore[arg-type]
    assert client.assigned == [[]]  # never "committed, else earliest" without the sink's word
    c._c = type("Quiet", (), {"consume": lambda self, n, t: []})()  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="sink away"):
        await c.getmany(timeout_ms=0, max_records=10)


async def test_a_stop_does_not_wait_for_the_lock_it_holds() -> None:
    c, client, listener = adapter({})
    await c.start()
    await asyncio.to_thread(c._on_assign, client, parts(0))  # type: ignore[arg-type]
    async with listener.lock:  # the stopping pipeline holds its lock while the consumer closes
        c._closing.set()
        await asyncio.wait_for(asyncio.to_thread(c._on_revoke, client, parts(0)), 5)  # type: ignore[arg-type]
    assert listener.revoked == []
    assert c.assignment() == set()


async def test_records_of_a_partition_revoked_during_the_poll_are_not_returned() -> None:
    c, client, _ = adapter({})
    await c.start()
    await asyncio.to_thread(c._on_assign, client, parts(0, 1))  # type: ignore[arg-type]
    fetched = [Message(topic="t", partition=p, offset=5, value=b"v", timestamp=(1, 0)) for p in (0, 1)]

    def consume(n: int, timeout: float) -> list[Message]:
        c._on_revoke(client, parts(1))  # type: ignore[arg-type]  # librdkafka serves it mid-consume
        return fetched

    client.consume = consume  # type: ignore[attr-defined]
    got = await c.getmany(timeout_ms=0, max_records=10)
    assert list(got) == [TopicPartition("t", 0)]
    assert [r.offset for r in got[TopicPartition("t", 0)]] == [5]
