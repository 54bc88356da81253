"""Domain events through librdkafka: every event acked, in order, on the partition aiokafka chose."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped]
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streams.errors import TransientError
from streams.pipeline.clients import events_producer_config
from streams.pipeline.events_out import LibrdkafkaEvents
from streams.pipeline.publisher import Outgoing
from streams.settings import Settings

pytestmark = pytest.mark.integration
PARTITIONS = 4


async def test_published_events_are_acked_in_order_on_aiokafkas_partition_of_their_key(
    settings: Settings,
) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    topic = f"it-events-out-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    keys = [f"customer-{i}".encode() for i in range(20)]
    sent = [Outgoing(topic, keys[i % 20], f"v{i}".encode(), [("ce_id", str(i).encode())]) for i in range(200)]
    events = LibrdkafkaEvents(events_producer_config(settings.kafka, settings.worker))
    await events.publish(sent)  # returns only once every event is acked
    await events.close()

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got: list[tuple[int, bytes, bytes]] = []
    try:
        while len(got) < len(sent):
            msgs = c.consume(500, timeout=10)
            assert msgs, f"only {len(got)} of {len(sent)} events on {topic}"
            got += [(int(m.partition() or 0), bytes(m.key() or b""), bytes(m.value() or b"")) for m in msgs]
    finally:
        c.close()
        admin.delete_topics([topic])
    partitioner = DefaultPartitioner()
    everything = list(range(PARTITIONS))
    # murmur2, as aiokafka and the Java clients: a subject's events stay on its partition.
    assert {(p, k) for p, k, _ in got} == {(partitioner(k, everything, everything), k) for k in keys}
    for k in keys:  # per key, in the order published
        assert [v for _, key, v in got if key == k] == [o.value for o in sent if o.key == k]


async def test_an_event_the_broker_refuses_fails_the_publish(settings: Settings) -> None:
    """Delivery reports come only for failures: a refused event must still fail the publish."""
    bootstrap = settings.kafka.bootstrap_servers
    topic = f"it-events-refused-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    small = NewTopic(topic, 1, 1, config={"max.message.bytes": "2048"})
    admin.create_topics([small])[topic].result(30)
    events = LibrdkafkaEvents(events_producer_config(settings.kafka, settings.worker), ack_timeout_s=20)
    try:
        fits = Outgoing(topic, b"k", b"small", [("ce_id", b"1")])
        await events.publish([fits])  # acked: no report, no failure
        with pytest.raises(TransientError, match=r"1 of 1 domain events not acked \(MSG_SIZE_TOO_LARGE"):
            await events.publish([Outgoing(topic, b"k", b"x" * 8192, [("ce_id", b"2")])])
    finally:
        await events.close()
        admin.delete_topics([topic])
