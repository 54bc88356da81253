"""End offsets of every topic, before and after the demo's load: how many events each stage made."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from streams.cdc.topics import DLQ_SUFFIX, DOMAIN_PREFIX, OUTBOX_PREFIX

# Connector topics that are not row changes: schema history, transaction boundaries.
_NOT_CHANGES = ("schema-history", ".transaction")
Offsets = dict[tuple[str, int], int]  # (topic, partition) -> end offset


def end_offsets(bootstrap: str) -> Offsets:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [
            TopicPartition(t, p)
            for t in consumer.topics()
            if not t.startswith("_")
            for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = consumer.end_offsets(tps) if tps else {}
        return {(tp.topic, tp.partition): int(end or 0) for tp, end in ends.items()}
    finally:
        consumer.close()


@dataclass(frozen=True)
class TopicCounts:
    captured: int  # row changes Debezium wrote to change topics
    outbox: int  # outbox events routed to outbox.event.*
    domain: int  # domain events the workers published
    dead_letters: int

    @classmethod
    def between(cls, before: Offsets, after: Offsets, prefixes: tuple[str, ...]) -> TopicCounts:
        delta: dict[str, int] = {}
        for (topic, partition), end in after.items():
            delta[topic] = delta.get(topic, 0) + end - before.get((topic, partition), 0)
        dlq = sum(n for t, n in delta.items() if t.endswith(DLQ_SUFFIX))
        live = {t: n for t, n in delta.items() if not t.endswith(DLQ_SUFFIX)}
        return cls(
            captured=sum(
                n for t, n in live.items() if t.startswith(prefixes) and not t.endswith(_NOT_CHANGES)
            ),
            outbox=sum(n for t, n in live.items() if t.startswith(OUTBOX_PREFIX + ".")),
            domain=sum(n for t, n in live.items() if t.startswith(DOMAIN_PREFIX + ".")),
            dead_letters=dlq,
        )
