"""The per-partition processing loop: poll → handle → publish → flush (rows + offsets) → commit.

Offsets: the sink stores each partition's next offset in the flush transaction; on assignment
the worker seeks to those (``Rebalance``), so Kafka's committed offsets are only an optimization
(committed after the flush). Errors, per record: ``TransientError`` → back off and retry the same
record; anything else → dead-letter it and go on. At flush: ``SinkRowError`` → dead-letter that
record, ``drop`` it, flush again — ``SinkRowErrors`` (every record one attempt found poison, e.g.
all placeholder inserts of the batch) → dead-letter them all at once, drop them, flush again; any
other failure → back off and retry the same batch. Nothing is committed past a record that is
neither applied nor dead-lettered, and nothing escapes.

Dead letters never block: only a broker that is down (a retriable Kafka error) is retried; a
letter the broker refuses is written in a form it takes (``deadletter.letter`` / ``bare``), and
a source offset already in the DLQ (an earlier delivery wrote it) is not written again.
"""

from __future__ import annotations

import asyncio
import itertools
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
from aiokafka.errors import KafkaError, KafkaTimeoutError  # type: ignore[import-untyped]

from streams.cdc import dlq_topic
from streams.errors import ChangefeedError, SinkRowError, SinkRowErrors, TransientError
from streams.pipeline.batch_index import RecordsByOffset, oldest_by_partition
from streams.pipeline.deadletter import Letter, Poison, bare, letter
from streams.pipeline.dlq_index import DeadLetterIndex
from streams.pipeline.events_out import AiokafkaEvents
from streams.pipeline.handle import Decoded, Handler, Record
from streams.pipeline.metrics import PipelineMetrics
from streams.pipeline.publishing import EventProducer, InlineEvents
from streams.pipeline.settings import PipelineSettings
from streams.project.events import DomainEvent
from streams.settings import KafkaSettings
from streams.sinks import AsyncPostgresSink, FlushResult

log = logging.getLogger(__name__)
T = TypeVar("T")
FAULT_EXIT_CODE = 70  # the test-only crash hook's exit status (EX_SOFTWARE)
# A flush normally takes milliseconds; one still running after this long waits on something
# (a lock another session holds, mostly): said in the log every period, counted once.
FLUSH_WAIT_LOG_S = 10.0
# Records decoded per step of a read ahead, about 5 ms: the flush it overlaps reads its replies
# between the steps. Measured (bench.dev, 211k-event replays): 64 cost 4-8 % more CPU per event
# in event-loop rounds and lost update-heavy throughput; 512 gained 3-7 % events/s on both
# workloads for the same CPU; one step per poll gained 0-3 % (the flush waited for the decode).
READ_AHEAD_SLICE = 512
# A poll read ahead: its batches, and their keys and values decoded (``Handler.decode_into``).
Ahead = tuple[dict[Any, list[Any]], tuple[Decoded, Decoded]]


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
        kafka: KafkaSettings | None = None,
        events: EventProducer | None = None,
    ) -> None:
        self.consumer, self.producer, self.sink, self.handler = consumer, producer, sink, handler
        self.settings = settings
        # The broker's record limit (the producer is built with the same, see clients.py).
        self.max_message_bytes = (kafka or KafkaSettings()).max_message_bytes
        # Domain events (the worker passes its publisher process or librdkafka's producer; unit
        # tests' fakes get encoding in process through ``producer``); dead letters use ``producer``.
        self.events: EventProducer = events or InlineEvents(
            AiokafkaEvents(producer), handler.encoders, self.max_message_bytes
        )
        # Without Kafka settings (unit tests' fakes) there is no DLQ to read: no de-duplication.
        self.dead_lettered = DeadLetterIndex(kafka)
        self.stopping = asyncio.Event()
        self.backoff = Backoff(settings, self.stopping)
        self.lock = asyncio.Lock()  # a batch and a rebalance never interleave
        self.stats = {"records": 0, "applied": 0, "dead_letters": 0, "flushes": 0, "flush_attempts": 0}
        self.metrics = PipelineMetrics()
        self.batch_since: dict[tuple[str, int], int] = {}
        # The next poll, read and decoded while the current batch's flush runs (``_read_ahead``).
        self.reading_ahead: asyncio.Task[Ahead] | None = None
        self.flushing = False  # the read-ahead decodes only while this is set

    async def run(self) -> None:
        ahead: asyncio.Task[Ahead] | None = None
        try:
            while not self.stopping.is_set():
                if ahead is None:
                    batches = await self._poll()
                    decoded = None
                else:
                    batches, decoded = await ahead
                    ahead = None
                    batches = self._still_owned(await self._top_up(batches), decoded)
                # One list of the partitions' lists, concatenated in C (not a Python step per record).
                records = list(itertools.chain.from_iterable(batches.values()))
                if records:
                    async with self.lock:
                        await self.process(records, decoded, read_ahead=self.settings.read_ahead != "off")
                        ahead, self.reading_ahead = self.reading_ahead, None
        finally:
            for task in (ahead, self.reading_ahead):
                if task is not None:
                    task.cancel()
            self.reading_ahead = None

    async def _poll(
        self, timeout_ms: int | None = None, max_records: int | None = None
    ) -> dict[Any, list[Any]]:
        batches: dict[Any, list[Any]] = await self.consumer.getmany(
            timeout_ms=self.settings.poll_timeout_ms if timeout_ms is None else timeout_ms,
            max_records=max_records or self.settings.max_batch,
        )
        self.metrics.probes.polled()
        return batches

    async def _top_up(self, batches: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
        """The read-ahead poll, plus what was fetched after it, during the commit (no wait).

        The read-ahead poll returns early in the flush with what was fetched by then; without
        this, a record fetched later in the flush would wait for one more batch (update-heavy's
        p99 at half load: 259 ms without the top-up, 180 ms with it, in full benches). A
        partition sought back meanwhile (revoked and assigned again, to the sink's offset) is
        read from where it was sought: its read-ahead records come again, so they are replaced,
        never skipped.
        """
        room = self.settings.max_batch - sum(len(rs) for rs in batches.values())
        if room <= 0 or self.stopping.is_set():
            return batches
        more = await self._poll(timeout_ms=0, max_records=room)
        if not more:
            return batches
        merged = dict(batches)
        for tp, records in more.items():
            have = merged.get(tp)
            if have and records[0].offset > have[-1].offset:
                merged[tp] = have + records
            else:  # new to this batch, or sought back: read from there
                merged[tp] = records
        return merged

    async def _read_ahead(self) -> Ahead:
        """The next poll, and (``read_ahead = "decode"``) as many of its keys and values decoded as
        the sink's commit of the current batch leaves time for (decoding more would only hold a
        second batch's values in memory for longer).

        Started once the batch's rows and events are handed over (``process``), run by ``run``
        after the batch: the poll is not awaited under the lock, so a rebalance listener waiting
        for the lock never waits for it (librdkafka calls the listener inside its consume). The
        decoding goes in slices, so the flush's replies are read between them.
        """
        batches = await self._poll()
        keys: Decoded = {}
        values: Decoded = {}
        if self.settings.read_ahead != "decode":  # "poll": raw records, decoded as they are handled
            return batches, (keys, values)
        decode = self.handler.decode_into
        for records in batches.values():
            for i in range(0, len(records), READ_AHEAD_SLICE):
                if not self.flushing:  # the rest is decoded as it is handled, as without read-ahead
                    return batches, (keys, values)
                decode(records[i : i + READ_AHEAD_SLICE], keys, values)
                await asyncio.sleep(0)
        return batches, (keys, values)

    def _still_owned(
        self, batches: dict[Any, list[Any]], decoded: tuple[Decoded, Decoded]
    ) -> dict[Any, list[Any]]:
        """What was read ahead, less the partitions revoked since (their new owner reads them from
        the sink's offsets; this worker's consumer is sought there if they come back)."""
        owned = self.consumer.assignment()
        if batches.keys() <= owned:
            return batches
        keys, values = decoded
        for tp in batches.keys() - owned:
            for r in batches[tp]:
                keys.pop((r.topic, r.partition, r.offset), None)
                values.pop((r.topic, r.partition, r.offset), None)
        return {tp: rs for tp, rs in batches.items() if tp in owned}

    async def process(
        self,
        records: Sequence[Any],
        decoded: tuple[Decoded, Decoded] | None = None,
        *,
        read_ahead: bool = False,
    ) -> FlushResult:
        """Handle, publish and flush one batch; ``decoded``: its keys and values read ahead.

        ``read_ahead``: once the batch is handed to the sink, start reading the next poll
        (``reading_ahead``, for ``run`` to await after this batch's commit).
        """
        self.metrics.observe_records(records)
        # Per partition, the batch's oldest record: it is the first one not committed, and any
        # earlier delivery's dead letter of this batch was written after it was (dlq_index.py).
        self.batch_since = oldest_by_partition(records)
        by_offset = RecordsByOffset(records)  # only a poison record looks one up

        async def prefetch() -> None:
            await self.handler.prefetch(records, decoded)

        try:  # an optimization: transient failures are retried, anything else falls back per key
            await self.backoff.retry("previous rows", prefetch, unknown=False)
        except TransientError:
            raise
        except Exception:
            log.exception("previous-row prefetch failed; falling back to one lookup per update")
        self.events.begin()
        handle, stage = self.handler.handle, self.events.stage
        for r in records:  # no coroutine and no extra call per record
            try:
                events = handle(r)
                failed: Exception | None = None
            except Exception as exc:
                failed = exc
            # Outside the except clause, as before: the retry's or dead letter's errors chain no
            # context from ``failed``.
            if failed is not None:
                events = await self._handle(r, failed)
            if events:
                stage((r.topic, r.partition, r.offset), events)
        # Every domain event acked before the sink stores the batch's offsets; a record whose
        # events cannot be encoded is poison (its rows stay in the batch, as its offset does).
        refused = await self.backoff.retry("publish", self.events.publish)
        if refused:
            await self.dead_letters([(by_offset[origin], exc) for origin, exc in refused])
        pending = self.metrics.pending(self.sink.batch.writes)  # before the flush clears them
        if read_ahead and not self.stopping.is_set():
            self.reading_ahead = asyncio.create_task(self._read_ahead())
        started = time.perf_counter()
        watch = asyncio.create_task(self._watch_flush())
        try:
            self.flushing = True
            result = await self._flush(by_offset)
        finally:
            self.flushing = False
            watch.cancel()
        self.metrics.observe_flush(result, time.perf_counter() - started)
        self.metrics.observe_applied(records, pending, result, self._high_water)
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

    def _high_water(self, topic: str, partition: int) -> int | None:
        return self.consumer.highwater(TopicPartition(topic, partition))  # type: ignore[no-any-return]

    def _fault_exit_after_flush(self) -> None:
        """TEST-ONLY (K2): die between the sink commit and the Kafka commit; off by default."""
        limit = self.settings.fault_exit_after_flushes
        if limit and self.stats["flushes"] >= limit:
            log.warning("fault hook: exiting after %d committed flushes, before the Kafka commit", limit)
            logging.shutdown()
            os._exit(FAULT_EXIT_CODE)

    async def _handle(self, r: Record, failed: BaseException) -> list[DomainEvent]:
        """After ``handler.handle`` failed in ``process``: retry a transient failure, dead-letter poison."""

        async def once() -> list[DomainEvent]:
            return self.handler.handle(r)

        try:
            if not isinstance(failed, TransientError):
                raise failed
            where = f"record {r.topic}[{r.partition}]@{r.offset}"
            log.warning("%s failed, retrying: %s", where, failed)
            return await self.backoff.retry(where, once, unknown=False)
        except TransientError:
            raise
        except Exception as exc:  # poison: any non-transient failure of this one record
            await self.dead_letters([(r, exc)])
            self.sink.mark(r.topic, r.partition, r.offset)
            return []

    async def _watch_flush(self) -> None:
        """Log (and count once) a flush still running after ``FLUSH_WAIT_LOG_S``, with why."""
        parts = sorted(self.sink.batch.next_offsets)
        where = ", ".join(f"{t}[{p}]" for t, p in parts) or "no partitions"
        started = time.monotonic()
        for n in itertools.count(1):
            await asyncio.sleep(FLUSH_WAIT_LOG_S)
            if n == 1:
                for topic in sorted({t for t, _ in parts}):
                    self.metrics.flush_waits.labels(topic=topic).inc()
            try:
                waiting = await self.sink.wait_event()
            except Exception as exc:  # only a diagnosis; the flush itself reports real failures
                waiting = f"unknown ({type(exc).__name__})"
            log.warning(
                "flush of %s still running after %.0f s, waiting on %s",
                where, time.monotonic() - started, waiting or "nothing (busy)",
            )  # fmt: skip

    async def _flush(self, by_offset: dict[tuple[str, int, int], Any]) -> FlushResult:
        """Flush; every record an attempt rejects is dead-lettered and dropped, then flush again.

        The sink names all of an attempt's poison at once (``SinkRowErrors``: placeholder inserts,
        and rows PostgreSQL rejects alone, found in one isolation pass); a record whose older
        write of the same key takes its place may be named by the next attempt. Each round drops
        at least one record, so the loop ends: at the latest when the batch is empty.
        """

        async def attempt() -> FlushResult:
            self.stats["flush_attempts"] += 1
            return await self.sink.flush()

        while True:
            try:
                return await self.backoff.retry("sink flush", attempt)
            except SinkRowError as exc:
                errors = exc.errors if isinstance(exc, SinkRowErrors) else (exc,)
                if len(errors) > 1:
                    log.warning("sink flush rejected %d records: dead-lettering them all", len(errors))
                await self.dead_letters(
                    [(by_offset[(e.origin.topic, e.origin.partition, e.origin.offset)], e) for e in errors]
                )
                self.sink.drop_all((e.origin.topic, e.origin.partition, e.origin.offset) for e in errors)

    async def dead_letters(self, poison: Sequence[tuple[Record, BaseException]]) -> None:
        """Dead-letter several records: sent together (started in source offset order), all awaited.

        The index checks run one by one first (the first of a partition may read the DLQ). Every
        send is awaited before anything fails, so no letter is left in flight; the first error
        (``TransientError``: stopped while the broker was down) is raised then.
        """
        todo: dict[tuple[str, int, int], tuple[Record, BaseException]] = {}
        for r, exc in sorted(poison, key=lambda p: (p[0].topic, p[0].partition, p[0].offset)):
            if (r.topic, r.partition, r.offset) not in todo and not await self._already_dead_lettered(r, exc):
                todo[(r.topic, r.partition, r.offset)] = (r, exc)
        outcomes = await asyncio.gather(
            *(self._write_letter(r, exc) for r, exc in todo.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _already_dead_lettered(self, r: Record, exc: BaseException) -> bool:
        """Whether an earlier delivery already wrote ``r`` 's dead letter (then said in the log)."""
        where = f"{r.topic}[{r.partition}]@{r.offset}"

        async def seen() -> bool:
            since = min(r.timestamp, self.batch_since.get((r.topic, r.partition), r.timestamp))
            return await self.dead_lettered.contains(r.topic, r.partition, r.offset, since)

        if not await self.backoff.retry(f"dead-letter index of {where}", seen, unknown=False):
            return False
        log.warning(
            "%s is already in %s (an earlier delivery dead-lettered it): %s: %s",
            where, dlq_topic(r.topic), type(exc).__name__, exc,
        )  # fmt: skip
        self.metrics.dead_letter_repeats.labels(topic=r.topic).inc()
        return True

    async def _write_letter(self, r: Record, exc: BaseException) -> None:
        """Send ``r`` 's dead letter, in a form the broker takes; counted once it is written."""
        p = Poison(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, list(r.headers or ()), exc)
        where = f"{r.topic}[{r.partition}]@{r.offset}"
        log.error("dead-lettering %s to %s: %s: %s", where, p.dlq_topic, type(exc).__name__, exc)
        form = letter(p, self.max_message_bytes)
        try:
            await self._send_letter(p, form, r.partition)
        except TransientError:
            raise  # stopped while the broker was down: nothing committed past this record
        except Exception as refused:  # deterministic: this form will never be accepted
            reason = f"{type(refused).__name__}: {refused}"
            log.error("%s: the broker refused its dead letter (%s); writing it bare", where, reason)
            form = bare(p, reason)
            try:
                await self._send_letter(p, form, None)
            except TransientError:
                raise
            except Exception as again:  # cannot happen with a sane broker; never block on it
                log.critical(
                    "%s: no dead letter can be written (%s: %s); skipped, this log is its only trace",
                    where, type(again).__name__, again,
                )  # fmt: skip
                self.metrics.dead_letter_forms.labels(topic=r.topic, form="lost").inc()
                return
        self.dead_lettered.add(r.topic, r.partition, r.offset)
        if form.form != "as_is":
            log.warning("%s dead-lettered as %s", where, form.form)
        self.stats["dead_letters"] += 1
        self.metrics.dead_letters.labels(topic=r.topic).inc()
        self.metrics.observe_dead_letter(r.topic)
        self.metrics.dead_letter_forms.labels(topic=r.topic, form=form.form).inc()

    async def _send_letter(self, p: Poison, form: Letter, partition: int | None) -> None:
        """Send one dead letter; only errors Kafka calls retriable (broker down) are retried."""

        async def send() -> object:
            try:
                return await self.producer.send_and_wait(
                    p.dlq_topic, value=form.value, key=form.key, partition=partition, headers=form.headers
                )
            except Exception as exc:
                if retriable(exc):
                    msg = f"{type(exc).__name__}: {exc}"
                    raise TransientError(msg) from exc
                raise

        await self.backoff.retry(f"dead letter of {p.topic}[{p.partition}]@{p.offset}", send, unknown=False)

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


def retriable(exc: BaseException) -> bool:
    """A Kafka error that goes away when the broker is back (connection, timeout, leadership)."""
    if isinstance(exc, asyncio.TimeoutError | OSError):
        return True
    if isinstance(exc, KafkaTimeoutError):  # not flagged retriable, but a broker that is away
        return True
    return isinstance(exc, KafkaError) and bool(exc.retriable)


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types here
    """Seek newly assigned partitions to the sink's stored offsets before consuming them."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with self.p.lock:  # waits for the batch in flight to flush
            for tp in revoked:
                self.p.sink.revoke(tp.topic, [tp.partition])
                self.p.dead_lettered.forget(tp.topic, [tp.partition])
            owned = len(self.p.consumer.assignment()) - len(revoked)
            self.p.metrics.observe_revoked([(tp.topic, tp.partition) for tp in revoked], max(0, owned))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.p.metrics.observe_assigned([(tp.topic, tp.partition) for tp in assigned], len(assigned))
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
