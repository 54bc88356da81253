"""Reading and re-driving dead letters (``changefeed dlq show|replay``).

Replay appends each dead letter's original key, value and headers to its source topic, so the
record flows through the normal pipeline again once its cause (a missing schema, a bug) is
fixed. Records that are still poison simply land in the DLQ again. Dead letters that do not
hold their record as it came (no key and no value, a truncated value, a dropped payload; see
``streams.pipeline.deadletter``) are skipped and counted: their bytes cannot be re-sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.cdc import dlq_topic
from streams.pipeline.deadletter import Header, original_headers, parse_headers, replayable
from streams.settings import KafkaSettings

# How long to wait for more dead letters once the end of the topic has been fetched.
POLL_MS = 1000


@dataclass(frozen=True)
class DeadLetter:
    dlq_offset: int
    partition: int
    key: bytes | None
    value: bytes | None
    headers: list[Header]

    @property
    def why(self) -> dict[str, str]:
        return parse_headers(self.headers)


def read(bootstrap: str, source_topic: str, limit: int | None = None) -> Iterator[DeadLetter]:
    """Every dead letter of ``source_topic`` from the beginning (no consumer group, no commits)."""
    topic = dlq_topic(source_topic)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        seen = 0
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for records in consumer.poll(POLL_MS).values():
                for r in records:
                    yield DeadLetter(r.offset, r.partition, r.key, r.value, list(r.headers or []))
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
    finally:
        consumer.close()


@dataclass
class Replayed:
    sent: int = 0
    skipped: int = 0  # not replayable: truncated, dropped or without key and value


def replay(kafka: KafkaSettings, source_topic: str, offsets: set[int] | None = None) -> Replayed:
    """Re-send dead letters (all, or those at ``offsets`` in the DLQ) to their source topic."""
    bootstrap = kafka.bootstrap_servers
    # A dead letter holds up to what the broker accepts; kafka-python's default stops at 1 MiB.
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=kafka.max_message_bytes
    )
    done = Replayed()
    try:
        for d in read(bootstrap, source_topic):
            if offsets is not None and d.dlq_offset not in offsets:
                continue
            if not replayable(d.headers):
                done.skipped += 1
                continue
            target = d.why.get("source_topic", source_topic)
            producer.send(target, key=d.key, value=d.value, headers=original_headers(d.headers))
            done.sent += 1
        producer.flush()
    finally:
        producer.close()
    return done
