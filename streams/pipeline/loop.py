"""The per-partition processing loop: poll → handle → publish → flush (rows + offsets) → commit.

Offsets: the sink stores each partition's next offset in the flush transaction; on assignment
the worker seeks to those (``Rebalance``), so Kafka's committed offsets are only an optimization
(committed after the flush). Errors, per record: ``TransientError`` → back off and retry the same
record; anything else → dead-letter it and go on. At flush: ``SinkRowError`` → dead-letter that
record, ``drop`` it, flush again; any other failure → back off and retry the same batch. Nothing
is committed past a record that is neither applied nor dead-lettered, and nothing escapes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from aiokafka import (  # type: ignore[import-untyped]  # aiokafka ships no py.typed
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)

from streams.errors import ChangefeedError, SinkRowError, TransientError
from streams.pipeline.deadletter import Poison, dlq_headers
from streams.pipeline.handle import Handler, Record
from streams.pipeline.metrics import PipelineMetrics
from streams.pipeline.publisher import Outgoing, publish
from streams.pipeline.settings import PipelineSettings
from streams.sinks import AsyncPostgresSink, FlushResult

log = logging.getLogger(__name__)
T = TypeVar("T")
FAULT_EXIT_CODE = 70  # the test-only crash hook's exit status (EX_SOFTWARE)


class Backoff:
    def __init__(self, s: PipelineSettings, stopping: asyncio.Event) -> None:
        self.s, self.stopping = s, stopping

    async def retry(self, what: str, call: Callable[[], Awaitable[T]], unknown: bool = True) -> T:
        """Retry ``call`` with doubling delay until it succeeds or we stop.

        ``TransientError`` is always retried and ``ChangefeedError`` s of other kinds never are
        (poison must reach the dead-letter topic); anything else (Kafka, OS errors) is retried
        when ``unknown`` is set — a flush or a send that failed for an unknown reason must not skip.
        """
        delay = self.s.backoff_initial_s
        while True:
            try:
                return await call()
            except TransientError as exc:
                reason = str(exc)
            except ChangefeedError:
                raise
            except Exception as exc:
                if not unknown:
                    raise
                reason = f"{type(exc).__name__}: {exc}"
            if self.stopping.is_set():
                msg = f"{what}: stopped while retrying ({reason})"
                raise TransientError(msg)
            log.warning("%s failed, retrying in %.1f s: %s", what, delay, reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.s.backoff_max_s)


class Pipeline:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        sink: AsyncPostgresSink,
        handler: Handler,
        settings: PipelineSettings,
    ) -> None:
        self.consumer, self.producer, self.sink, self.handler = consumer, producer, sink, handler
        self.settings = settings
        self.stopping = asyncio.Event()
        self.backoff = Backoff(settings, self.stopping)
        self.lock = asyncio.Lock()  # a batch and a rebalance never interleave
        self.stats = {"records": 0, "applied": 0, "dead_letters": 0, "flushes": 0}
        self.metrics = PipelineMetrics()

    async def run(self) -> None:
        while not self.stopping.is_set():
            batches = await self.consumer.getmany(
                timeout_ms=self.settings.poll_timeout_ms, max_records=self.settings.max_batch
            )
            records = [r for rs in batches.values() for r in rs]
            if records:
                async with self.lock:
                    await self.process(records)

    async def process(self, records: Sequence[Any]) -> FlushResult:
        self.metrics.observe_records(records)
        outgoing: list[Outgoing] = []
        by_offset: dict[tuple[str, int, int], Any] = {}

        async def prefetch() -> None:
            await self.handler.prefetch(records)

        try:  # an optimization: transient failures are retried, anything else falls back per key
            await self.backoff.retry("previous rows", prefetch, unknown=False)
        except TransientError:
            raise
        except Exception:
            log.exception("previous-row prefetch failed; falling back to one lookup per update")
        for r in records:
            by_offset[(r.topic, r.partition, r.offset)] = r
            outgoing += await self._handle(r)
        if outgoing:
            futures = await self.backoff.retry("publish", lambda: publish(self.producer, outgoing))
            acks: list[Awaitable[object]] = [f for f in futures if isinstance(f, Awaitable)]

            async def acked() -> list[object]:
                return list(await asyncio.gather(*acks))

            await self.backoff.retry("publish ack", acked)
        started = time.perf_counter()
        result = await self._flush(by_offset)
        self.metrics.observe_flush(result, time.perf_counter() - started)
        self.stats["records"] += len(records)
        self.stats["applied"] += result.applied
        self.stats["flushes"] += 1
        if result.duplicates or result.stale:  # replays and zombie flushes end here, visibly
            log.info(
                "version guard refused %d duplicate and %d stale writes", result.duplicates, result.stale
            )
        self._fault_exit_after_flush()
        await self._commit(result)
        return result

    def _fault_exit_after_flush(self) -> None:
        """TEST-ONLY (K2): die between the sink commit and the Kafka commit; off by default."""
        limit = self.settings.fault_exit_after_flushes
        if limit and self.stats["flushes"] >= limit:
            log.warning("fault hook: exiting after %d committed flushes, before the Kafka commit", limit)
            logging.shutdown()
            os._exit(FAULT_EXIT_CODE)

    async def _handle(self, r: Record) -> list[Outgoing]:
        async def once() -> list[Outgoing]:
            return self.handler.handle(r)

        try:
            return await self.backoff.retry(
                f"record {r.topic}[{r.partition}]@{r.offset}", once, unknown=False
            )
        except TransientError:
            raise
        except Exception as exc:  # poison: any non-transient failure of this one record
            await self.dead_letter(r, exc)
            self.sink.batch.mark(r.topic, r.partition, r.offset)
            return []

    async def _flush(self, by_offset: dict[tuple[str, int, int], Any]) -> FlushResult:
        while True:
            try:
                return await self.backoff.retry("sink flush", self.sink.flush)
            except SinkRowError as exc:
                o = exc.origin
                record = by_offset[(o.topic, o.partition, o.offset)]
                await self.dead_letter(record, exc)
                self.sink.batch.drop(o.topic, o.partition, o.offset)

    async def dead_letter(self, r: Record, exc: BaseException) -> None:
        p = Poison(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, list(r.headers or ()), exc)
        log.error(
            "dead-lettering %s[%d]@%d to %s: %s: %s",
            r.topic, r.partition, r.offset, p.dlq_topic, type(exc).__name__, exc,
        )  # fmt: skip

        async def send() -> object:
            return await self.producer.send_and_wait(
                p.dlq_topic, value=r.value, key=r.key, partition=r.partition, headers=dlq_headers(p)
            )

        await self.backoff.retry(f"dead letter of {r.topic}[{r.partition}]@{r.offset}", send)
        self.stats["dead_letters"] += 1
        self.metrics.dead_letters.labels(topic=r.topic).inc()

    async def _commit(self, result: FlushResult) -> None:
        """Kafka commit: an optimization after the sink transaction (the sink's offsets win)."""
        offsets = {TopicPartition(t, p): o for (t, p), o in result.offsets.items()}
        offsets = {tp: o for tp, o in offsets.items() if tp in self.consumer.assignment()}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:  # a rebalance in progress; the sink already has the truth
            log.info("kafka commit skipped (%s): %s", type(exc).__name__, exc)


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types here
    """Seek newly assigned partitions to the sink's stored offsets before consuming them."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with self.p.lock:  # waits for the batch in flight to flush
            for tp in revoked:
                self.p.sink.revoke(tp.topic, [tp.partition])

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        by_topic: dict[str, list[int]] = {}
        for tp in assigned:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        for topic, parts in by_topic.items():
            stored = await self.p.backoff.retry(
                f"offset load {topic}", partial(self.p.sink.assign, topic, parts)
            )
            for part in parts:
                tp = TopicPartition(topic, part)
                if part in stored:
                    self.p.consumer.seek(tp, stored[part])
                    log.info("assigned %s[%d]: seek to sink offset %d", topic, part, stored[part])
                else:
                    log.info("assigned %s[%d]: no sink offset, committed/earliest", topic, part)
