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

    async def prefetch(self, records: list[Rec], ahead: Any = None) -> None:
        self.prefetched = len(records)
        self.ahead = ahead

    def decode_into(self, records: list[Rec], keys: dict[Any, Any], values: dict[Any, Any]) -> None:
        for r in records:
            keys[(r.topic, r.partition, r.offset)] = r.key
            values[(r.topic, r.partition, r.offset)] = r.value

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


class PollingConsumer(FakeConsumer):
    """Hands out scripted polls; after the last one it stops the pipeline (nothing more to read)."""

    def __init__(self, polls: list[dict[Any, list[Rec]]], p: Pipeline | None = None) -> None:
        super().__init__()
        self.polls, self.p = polls, p
        self.owned = {tp for poll in polls for tp in poll}
        self.polled = 0
        self.asked: list[tuple[int, int]] = []  # (timeout_ms, max_records) of each poll
        self.second_poll = asyncio.Event()
        self.during_poll: Any = None  # a coroutine function run inside the second poll

    def assignment(self) -> set[Any]:
        return set(self.owned)

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[Rec]]:
        self.polled += 1
        self.asked.append((timeout_ms, max_records))
        if self.polled == 2:
            self.second_poll.set()
            if self.during_poll is not None:
                await self.during_poll()
        if not self.polls:
            assert self.p is not None
            self.p.stopping.set()
            return {}
        return self.polls.pop(0)


class OverlapSink(FakeSink):
    """A flush that completes only once the next poll was read (so it must be read meanwhile)."""

    def __init__(self, consumer: PollingConsumer) -> None:
        super().__init__([])
        self.consumer, self.log = consumer, []

    async def flush(self) -> FlushResult:
        self.log.append(("flush", sorted(self.batch.next_offsets.items())))
        if self.flushes == 0:
            await asyncio.wait_for(self.consumer.second_poll.wait(), 5)
        return await super().flush()


class LoggingHandler(FakeHandler):
    def __init__(self, sink: OverlapSink) -> None:
        super().__init__(sink, {})
        self.log = sink.log
        self.adopted: list[Any] = []

    async def prefetch(self, records: list[Rec], ahead: Any = None) -> None:
        self.adopted.append(None if ahead is None else sorted(ahead[0]))

    def handle(self, r: Rec) -> list[Any]:
        self.log.append(("handle", (r.topic, r.partition, r.offset)))
        return super().handle(r)


def polling_pipeline(
    polls: list[dict[Any, list[Rec]]], read_ahead: str = "decode"
) -> tuple[Pipeline, PollingConsumer, OverlapSink, Any]:
    consumer = PollingConsumer(polls)
    sink = OverlapSink(consumer)
    handler = LoggingHandler(sink)
    ahead = PipelineSettings(backoff_initial_s=0.001, backoff_max_s=0.002, read_ahead=read_ahead)
    p = Pipeline(consumer, FakeProducer(), sink, handler, ahead)  # type: ignore[arg-type]
    consumer.p = p
    return p, consumer, sink, handler


async def test_the_next_poll_is_read_and_decoded_during_the_flush_and_handled_after_it() -> None:
    from aiokafka import TopicPartition

    tp = TopicPartition("t", 0)
    p, consumer, sink, handler = polling_pipeline([{tp: [Rec(0), Rec(1)]}, {tp: [Rec(2)]}])
    await asyncio.wait_for(p.run(), 10)
    # The first flush waited for the second poll: it was read while the sink committed.
    assert sink.log == [
        ("handle", ("t", 0, 0)),
        ("handle", ("t", 0, 1)),
        ("flush", [(("t", 0), 2)]),
        ("handle", ("t", 0, 2)),  # handled only after the first batch's flush
        ("flush", [(("t", 0), 3)]),
    ]
    assert consumer.committed == {tp: 3}
    # The first batch was polled plainly; the second came decoded, and prefetch adopted it.
    assert handler.adopted == [None, [("t", 0, 2)]]
    assert p.reading_ahead is None


async def test_poll_ahead_reads_the_next_poll_during_the_flush_but_decodes_nothing_ahead() -> None:
    from aiokafka import TopicPartition

    tp = TopicPartition("t", 0)
    p, consumer, sink, handler = polling_pipeline([{tp: [Rec(0)]}, {tp: [Rec(1)]}], read_ahead="poll")
    await asyncio.wait_for(p.run(), 10)  # the first flush completes only once the next poll is read
    assert [what for what, _ in sink.log] == ["handle", "flush", "handle", "flush"]
    assert handler.adopted == [None, []]  # the second batch came raw: decoded as it was handled
    assert consumer.committed == {tp: 2}


async def test_after_the_commit_the_read_ahead_is_topped_up_with_what_was_fetched_meanwhile() -> None:
    from aiokafka import TopicPartition

    t0, t1 = TopicPartition("t", 0), TopicPartition("t", 1)
    polls = [{t0: [Rec(0)]}, {t0: [Rec(1)]}, {t0: [Rec(2)], t1: [Rec(4, partition=1)]}]
    p, consumer, sink, _ = polling_pipeline(polls, read_ahead="poll")
    await asyncio.wait_for(p.run(), 10)
    assert sink.log == [
        ("handle", ("t", 0, 0)),
        ("flush", [(("t", 0), 1)]),
        ("handle", ("t", 0, 1)),  # the read-ahead poll's record ...
        ("handle", ("t", 0, 2)),  # ... and what came after it, in the same batch, in order
        ("handle", ("t", 1, 4)),
        ("flush", [(("t", 0), 3), (("t", 1), 5)]),
    ]
    # The top-up waits for nothing and asks only for the batch's room.
    assert consumer.asked[2] == (0, p.settings.max_batch - 1)
    assert consumer.committed == {t0: 3, t1: 5}


async def test_a_partition_sought_back_during_the_read_ahead_is_read_from_there_not_twice() -> None:
    from aiokafka import TopicPartition

    tp = TopicPartition("t", 0)
    # Revoked and assigned again during the commit: the consumer was sought back to offset 5.
    polls = [{tp: [Rec(4)]}, {tp: [Rec(5), Rec(6)]}, {tp: [Rec(5), Rec(6), Rec(7)]}]
    p, consumer, sink, _ = polling_pipeline(polls, read_ahead="poll")
    await asyncio.wait_for(p.run(), 10)
    handled = [at for what, at in sink.log if what == "handle"]
    assert handled == [("t", 0, 4), ("t", 0, 5), ("t", 0, 6), ("t", 0, 7)]
    assert consumer.committed == {tp: 8}


async def test_a_full_read_ahead_is_not_topped_up() -> None:
    from aiokafka import TopicPartition

    tp = TopicPartition("t", 0)
    p, consumer, _, _ = polling_pipeline([{tp: [Rec(0)]}, {tp: [Rec(1), Rec(2)]}], read_ahead="poll")
    p.settings = p.settings.model_copy(update={"max_batch": 2})
    await asyncio.wait_for(p.run(), 10)
    assert [timeout for timeout, _ in consumer.asked].count(0) == 0  # no poll without a wait
    assert consumer.committed == {tp: 3}


def test_read_ahead_takes_the_boolean_it_was_first() -> None:
    assert PipelineSettings().read_ahead == "off"
    assert PipelineSettings(read_ahead=True).read_ahead == "decode"  # type: ignore[arg-type]
    assert PipelineSettings(read_ahead="false").read_ahead == "off"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="read_ahead"):
        PipelineSettings(read_ahead="sometimes")  # type: ignore[arg-type]


async def test_a_partition_revoked_while_read_ahead_is_not_handled() -> None:
    from aiokafka import TopicPartition

    t0, t1 = TopicPartition("t", 0), TopicPartition("t", 1)
    p, consumer, sink, handler = polling_pipeline([{t0: [Rec(0)]}, {t0: [Rec(1)], t1: [Rec(7, partition=1)]}])

    async def revoke() -> None:
        consumer.owned.discard(t1)  # given away before the read-ahead poll is processed

    consumer.during_poll = revoke
    await asyncio.wait_for(p.run(), 10)
    handled = [at for what, at in sink.log if what == "handle"]
    assert handled == [("t", 0, 0), ("t", 0, 1)]
    assert handler.adopted == [None, [("t", 0, 1)]]  # its decoded record was dropped too


async def test_a_rebalance_listener_inside_the_read_ahead_poll_gets_the_lock() -> None:
    """librdkafka runs the rebalance listener inside its consume, and the listener takes the
    pipeline's lock: the read-ahead poll must not be awaited while the batch holds it."""
    from aiokafka import TopicPartition

    tp = TopicPartition("t", 0)
    p, consumer, sink, _ = polling_pipeline([{tp: [Rec(0)]}, {tp: [Rec(1)]}])
    listened: list[str] = []

    async def listener() -> None:
        async with p.lock:  # waits for the batch in flight, as Rebalance does
            listened.append("revoked")

    consumer.during_poll = listener
    sink.flushes = 1  # the first flush need not wait for the poll (it would wait forever here)
    await asyncio.wait_for(p.run(), 10)
    assert listened == ["revoked"]
    assert consumer.committed == {tp: 2}


async def test_without_read_ahead_the_next_poll_waits_for_the_commit() -> None:
    from aiokafka import TopicPartition

    tp = TopicPartition("t", 0)
    p, consumer, sink, handler = polling_pipeline([{tp: [Rec(0)]}, {tp: [Rec(1)]}], read_ahead="off")
    sink.flushes = 1  # the flush does not wait for a poll that would never come
    await asyncio.wait_for(p.run(), 10)
    assert handler.adopted == [None, None]
    assert consumer.committed == {tp: 2}
