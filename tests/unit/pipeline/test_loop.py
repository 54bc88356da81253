"""The loop's error classification with in-memory fakes (no Kafka, no database)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.errors import (
    AvroBodyError,
    MessageOrigin,
    RegistryUnavailableError,
    SinkRowError,
    SinkRowErrors,
    SinkUnavailableError,
)
from streams.pipeline import Backoff, Pipeline, PipelineSettings
from streams.sinks import FlushResult
from streams.sinks.batch import Batch

FAST = PipelineSettings(backoff_initial_s=0.001, backoff_max_s=0.002)


@dataclass
class Rec:
    offset: int
    topic: str = "t"
    partition: int = 0
    timestamp: int = 0
    key: bytes | None = b"k"
    value: bytes | None = b"v"
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class FakeSink:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures, self.batch, self.dropped, self.flushes = failures, Batch(), [], 0

    async def flush(self) -> FlushResult:
        self.flushes += 1
        if self.failures:
            raise self.failures.pop(0)
        return FlushResult(offsets=dict(self.batch.next_offsets))

    def mark(self, topic: str, partition: int, offset: int) -> None:
        self.batch.mark(topic, partition, offset)

    def drop(self, topic: str, partition: int, offset: int) -> bool:
        return self.batch.drop(topic, partition, offset)

    def drop_all(self, origins: Any) -> int:
        return self.batch.drop_all(origins)


class FakeHandler:
    encoders: Any = None  # not publishing

    def __init__(self, sink: FakeSink, errors: dict[int, list[Exception]]) -> None:
        self.sink, self.errors = sink, errors

    async def prefetch(self, records: list[Rec]) -> None:
        self.prefetched = len(records)

    def handle(self, r: Rec) -> list[Any]:
        pending = self.errors.get(r.offset)
        if pending:
            raise pending.pop(0)
        self.sink.mark(r.topic, r.partition, r.offset)
        return []


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[str, bytes]]]] = []

    async def send_and_wait(self, topic: str, **kw: Any) -> None:
        self.sent.append((topic, kw["headers"]))


class FakeConsumer:
    def __init__(self) -> None:
        self.committed: dict[Any, int] = {}
        self.end: int | None = None  # the broker's high-water mark; None: not known yet

    def assignment(self) -> set[Any]:
        from aiokafka import TopicPartition

        return {TopicPartition("t", 0)}

    def highwater(self, tp: Any) -> int | None:
        return self.end

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.committed.update(offsets)


def pipeline(failures: list[Exception], errors: dict[int, list[Exception]]) -> tuple[Pipeline, Any]:
    sink = FakeSink(failures)
    p = Pipeline(FakeConsumer(), FakeProducer(), sink, FakeHandler(sink, errors), FAST)  # type: ignore[arg-type]
    return p, sink


async def test_transient_record_error_is_retried_not_dead_lettered() -> None:
    p, _ = pipeline([], {1: [RegistryUnavailableError("down"), RegistryUnavailableError("down")]})
    result = await p.process([Rec(0), Rec(1)])
    assert result.offsets == {("t", 0): 2}
    assert p.producer.sent == []


async def test_poison_record_is_dead_lettered_and_its_offset_consumed() -> None:
    p, _ = pipeline([], {1: [AvroBodyError("truncated")]})
    result = await p.process([Rec(0), Rec(1), Rec(2)])
    assert result.offsets == {("t", 0): 3}
    ((topic, headers),) = p.producer.sent
    assert topic == "t.dlq"
    assert dict(headers)["cf_source_offset"] == b"1"
    assert p.consumer.committed  # Kafka commit follows the sink flush


async def test_sink_outage_retries_the_same_batch() -> None:
    p, sink = pipeline([SinkUnavailableError("down")] * 3, {})
    result = await p.process([Rec(0)])
    assert sink.flushes == 4
    assert result.offsets == {("t", 0): 1}


async def test_a_row_the_sink_rejects_is_dead_lettered_then_the_batch_flushes() -> None:
    p, sink = pipeline([SinkRowError("bad", MessageOrigin("t", 0, 1))], {})
    await p.process([Rec(0), Rec(1)])
    assert sink.flushes == 2
    assert [t for t, _ in p.producer.sent] == ["t.dlq"]


async def test_backoff_never_retries_poison() -> None:
    calls = 0

    async def poison() -> None:
        nonlocal calls
        calls += 1
        raise AvroBodyError("x")

    with pytest.raises(AvroBodyError):
        await Backoff(FAST, asyncio.Event()).retry("x", poison)
    assert calls == 1


class RefusingProducer(FakeProducer):
    """Refuses the first ``refusals`` sends with ``error`` (a broker or client verdict)."""

    def __init__(self, error: Exception, refusals: int) -> None:
        super().__init__()
        self.error, self.refusals, self.values = error, refusals, []

    async def send_and_wait(self, topic: str, **kw: Any) -> None:
        if self.refusals:
            self.refusals -= 1
            raise self.error
        self.values.append(kw["value"])
        await super().send_and_wait(topic, **kw)


async def test_a_dead_letter_the_broker_refuses_is_written_bare_not_retried() -> None:
    from aiokafka.errors import MessageSizeTooLargeError

    p, _ = pipeline([], {0: [AvroBodyError("bad")]})
    p.producer = RefusingProducer(MessageSizeTooLargeError("too large"), refusals=1)
    result = await p.process([Rec(0)])
    assert result.offsets == {("t", 0): 1}
    ((_, headers),) = p.producer.sent
    assert p.producer.values == [b""]
    assert b"MessageSizeTooLargeError" in dict(headers)["cf_payload_dropped"]


async def test_a_broker_that_is_down_is_retried_for_the_dead_letter() -> None:
    from aiokafka.errors import KafkaConnectionError

    p, _ = pipeline([], {0: [AvroBodyError("bad")]})
    p.producer = RefusingProducer(KafkaConnectionError("down"), refusals=3)
    await p.process([Rec(0)])
    assert p.producer.values == [b"v"]  # as it came, once the broker is back


def _event(subject: str) -> Any:
    from datetime import UTC, datetime

    from streams.project.events import domain_event

    return domain_event("events", "x.Happened", "id", "src", datetime.now(UTC), subject, 1, {}, {})


class BigEncoders:
    """Encodes the event of subject "big" over the broker's limit, any other small."""

    def encode(self, e: Any) -> bytes:
        return b"x" * (2000 if e.subject == "big" else 10)


class SenderOf:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def publish(self, events: Any) -> None:
        self.sent += events

    async def close(self) -> None:
        return None


async def test_a_domain_event_over_the_broker_limit_dead_letters_its_record_only() -> None:
    from streams.pipeline.publishing import InlineEvents

    class Publishing(FakeHandler):
        def handle(self, r: Rec) -> list[Any]:
            super().handle(r)
            return [_event("big" if r.offset == 0 else "small")]

    sink, sender = FakeSink([]), SenderOf()
    events = InlineEvents(sender, BigEncoders(), 1000)  # type: ignore[arg-type]
    p = Pipeline(FakeConsumer(), FakeProducer(), sink, Publishing(sink, {}), FAST, events=events)  # type: ignore[arg-type]
    result = await p.process([Rec(0), Rec(1)])
    assert result.offsets == {("t", 0): 2}
    ((topic, headers),) = p.producer.sent
    assert topic == "t.dlq"
    assert dict(headers)["cf_error_class"] == b"TransformError"
    assert [o.key for o in sender.sent] == [b"small"]  # the other record's event went out


async def test_every_row_one_flush_rejects_is_dead_lettered_before_one_more_flush() -> None:
    bad = [SinkRowError(f"bad {n}", MessageOrigin("t", 0, n)) for n in (3, 1, 2)]
    p, sink = pipeline([SinkRowErrors(bad)], {})
    result = await p.process([Rec(0), Rec(1), Rec(2), Rec(3), Rec(4)])
    assert sink.flushes == 2  # not one more per rejected row
    assert p.stats["flush_attempts"] == 2
    assert result.offsets == {("t", 0): 5}
    sent = [dict(headers) for _, headers in p.producer.sent]
    assert [h["cf_source_offset"] for h in sent] == [b"1", b"2", b"3"]  # in source offset order
    assert [h["cf_error_message"] for h in sent] == [
        str(e).encode() for e in sorted(bad, key=lambda e: e.origin.offset)
    ]
    assert p.stats["dead_letters"] == 3
