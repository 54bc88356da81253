"""An atomic source's pipeline: the transaction gate in front of ``Pipeline.process``.

One worker owns an atomic source (``streams.pipeline.owner``). Its ``AtomicPipeline`` polls the
source's declared change topics and its ``<prefix>.transaction`` topic by manual assignment, hands
every poll to the gate (``streams.pipeline.transactions``) and processes what the gate releases:
whole transactions, in commit order, several per flush, each flush one sink transaction with the
offsets (which the gate keeps at transaction boundaries) and a split transaction's progress.

Fencing: the owner holds a session-level advisory lock on the very sink session its flushes run
on (``OwnedSink``). A worker that lost that session lost the lock with it, and ``OwnedSink``
never reconnects: its next flush fails (``OwnershipLost``) and it goes back to standby, so two
workers never both flush one source's transactions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import psycopg
from aiokafka import TopicPartition  # type: ignore[import-untyped]  # aiokafka ships no py.typed
from kafka import KafkaAdminClient
from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.errors import ChangefeedError, DecodeError, MessageOrigin
from streams.pipeline.handle import Handler
from streams.pipeline.loop import Pipeline
from streams.pipeline.transactions import END, Gate, Marker, Release, transaction_key
from streams.project.sources import AtomicSource
from streams.sinks import AsyncPostgresSink, FlushResult
from streams.sinks.classify import unavailable
from streams.sinks.flush import Step
from streams.sinks.postgres import Steps
from streams.sinks.tx_progress import load_progress_sql, parse_progress, progress_steps

log = logging.getLogger(__name__)
TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
# How often the owner looks for a declared change topic Connect created after it started.
TOPIC_CHECK_S = 2.0


class OwnershipLost(ChangefeedError):
    """This worker does not (or no longer) own the atomic source: back to standby."""


def owner_lock_key(schema: str, group: str, source: str) -> str:
    return f"changefeed\x1f{schema}\x1fatomic\x1f{group}\x1f{source}"


class OwnedSink(AsyncPostgresSink):
    """The sink of an atomic source's owner: its one session holds the ownership lock.

    ``connection`` takes the lock on a new session (``OwnershipLost`` if another worker holds it)
    and never opens a second one: a lost session is lost ownership. Each flush also stores the
    gate's split-transaction progress (``progress`` / ``finished``), in the same transaction."""

    def __init__(self, *args: Any, source: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.source = source
        self.lock_key = owner_lock_key(self.control_schema, self.consumer_group, source)
        self.owned = False
        self.progress: Mapping[str, Mapping[str, int]] = {}
        self.finished: list[str] = []
        self._flushing = False

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self.owned:
            msg = f"source {self.source}: the sink session holding its ownership was lost"
            raise OwnershipLost(msg)
        conn = await super().connection()
        try:
            cur = await conn.execute(TRY_LOCK_SQL, [self.lock_key])
            row = await cur.fetchone()
            await conn.commit()
        except psycopg.Error as exc:
            await self.close()
            raise unavailable(exc, "ownership lock") from exc
        if row is None or not row[0]:
            await self.close()
            msg = f"source {self.source}: another worker owns it"
            raise OwnershipLost(msg)
        self.owned = True
        return conn

    async def load_progress(self) -> dict[str, dict[str, int]]:
        """Split transactions' applied counts stored by earlier owners."""
        try:
            async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                cur = await conn.execute(
                    load_progress_sql(self.control_schema), [self.consumer_group, self.source]
                )
                return parse_progress(await cur.fetchall())
        except psycopg.Error as exc:
            raise unavailable(exc, "transaction progress load") from exc

    async def flush(self) -> FlushResult:
        self._flushing = True
        try:
            result = await super().flush()
        finally:
            self._flushing = False
        self.progress, self.finished = {}, []
        return result

    async def _run(self, steps: Steps | list[Step]) -> FlushResult:
        if self._flushing and not isinstance(steps, list):
            extra = progress_steps(
                self.control_schema, self.consumer_group, self.source, self.progress, self.finished
            )
            steps = _then(steps, [Step(q, p, fetch=False) for q, p in extra])
        return await super()._run(steps)


def _then(steps: Steps, extra: list[Step]) -> Steps:
    result = yield from steps
    for step in extra:  # noqa: UP028  # not ``yield from``: the driver ``send``s each step's rows
        yield step
    return result


class TransactionMetrics:
    """The atomic sources' gauges and counters, in the worker's registry (label: the source)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.buffered = Gauge(
            "changefeed_transactions_buffered",
            "Source transactions buffered by the gate (incomplete, or waiting for an earlier one).",
            ["source"],
            registry=r,
        )
        self.buffered_rows = Gauge(
            "changefeed_transaction_rows_buffered", "Change records the gate holds.", ["source"], registry=r
        )
        self.released = Counter(
            "changefeed_transactions_released",
            "Source transactions applied whole (or finished, when split).",
            ["source"],
            registry=r,
        )
        self.split = Counter(
            "changefeed_transactions_split",
            "Source transactions applied in parts: over max_transaction_rows (rows) or incomplete"
            " after max_transaction_wait_s (wait).",
            ["source", "reason"],
            registry=r,
        )
        self.owner = Gauge(
            "changefeed_atomic_source_owned",
            "1 while this worker owns the atomic source.",
            ["source"],
            registry=r,
        )

    def observe(self, source: str, out: Release, gate: Gate) -> None:
        self.buffered.labels(source=source).set(gate.buffered_transactions)
        self.buffered_rows.labels(source=source).set(gate.buffered_rows)
        if out.transactions:
            self.released.labels(source=source).inc(out.transactions)
        for s in out.splits:
            self.split.labels(source=source, reason=s.reason).inc()


def build_gate(source: AtomicSource, handler: Handler) -> Gate:
    """The gate of ``source``, decoding with the handler's decoder; a decoded change value is
    left in ``handler.values`` so ``handle`` does not decode it again."""
    cls = source.connector_class

    def decode(r: Any) -> Any:
        if r.value is None:
            return None
        try:
            return handler.decoder.decode(r.value, MessageOrigin(r.topic, r.partition, r.offset))
        except DecodeError:
            return None  # passes through; ``handle`` dead-letters it

    def tx_id(r: Any) -> str | None:
        value = decode(r)
        if value is None:
            return None
        handler.values[(r.topic, r.partition, r.offset)] = value
        tx = value.get("transaction") if isinstance(value, Mapping) else None
        return str(tx["id"]) if isinstance(tx, Mapping) and tx.get("id") is not None else None

    def marker(r: Any) -> Marker | None:
        value = decode(r)
        if not isinstance(value, Mapping) or value.get("id") is None:
            return None
        counts: dict[str, int] = {}
        if value.get("status") == END:
            for c in value.get("data_collections") or ():
                counts[str(c["data_collection"])] = int(c["event_count"])
        return Marker(str(value.get("status")), transaction_key(cls, str(value["id"])), counts)

    return Gate(
        source.name,
        source.collections,
        tx_id,
        marker,
        key=lambda i: transaction_key(cls, i),
        max_rows=source.spec.max_transaction_rows,
        max_wait_s=source.spec.max_transaction_wait_s,
    )


class AtomicPipeline(Pipeline):
    """``Pipeline`` behind the gate; offsets live in the sink only (no group, nothing to commit)."""

    sink: OwnedSink

    def __init__(
        self, *args: Any, source: AtomicSource, tx_metrics: TransactionMetrics, bootstrap: str, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.bootstrap = bootstrap
        self.source, self.tx_metrics = source, tx_metrics
        self.gate = build_gate(source, self.handler)
        self.watched: set[str] = set()  # declared topics that existed at the assignment

    async def run(self) -> None:
        checked = time.monotonic()
        while not self.stopping.is_set():
            if not self.consumer.assignment():  # none of the topics exists yet: aiokafka would wait
                await asyncio.sleep(self.settings.poll_timeout_ms / 1000)
                batches = {}
            else:
                batches = await self.consumer.getmany(
                    timeout_ms=self.settings.poll_timeout_ms, max_records=self.settings.max_batch
                )
            self.metrics.probes.polled()
            now = time.monotonic()
            self.gate.offer((r for rs in batches.values() for r in rs), now)
            out = self.gate.release(now)
            self.tx_metrics.observe(self.source.name, out, self.gate)
            if out:
                async with self.lock:
                    await self.apply(out)
            if now - checked > TOPIC_CHECK_S:
                checked = now
                await self._check_topics()

    async def apply(self, out: Release) -> FlushResult:
        self.sink.progress, self.sink.finished = out.progress, out.finished
        for topic, partition, offset in out.marks:
            self.sink.mark(topic, partition, offset)
        return await self.process(out.records)

    async def _check_topics(self) -> None:
        existing = set(await self.consumer.topics())
        appeared = sorted((set(self.source.topics) & existing) - self.watched)
        if appeared:
            log.info("source %s: %s appeared", self.source.name, ", ".join(appeared))
            await self.assign_topics(appeared)

    async def assign_topics(self, topics: list[str]) -> None:
        """Add every partition of ``topics`` to the assignment, from the sink's stored offsets
        (the beginning without one). In place: the partitions already read keep their positions,
        so the gate's buffers stay consistent (a topic Debezium creates with its first record
        must not cost a re-election)."""
        consumer = self.consumer
        counts = await asyncio.to_thread(partitions_of, self.bootstrap, topics)
        kept = {tp: await consumer.position(tp) for tp in consumer.assignment()}
        new = [TopicPartition(t, n) for t in topics for n in counts.get(t, ())]
        consumer.assign([*kept, *new])  # aiokafka forgets the old positions: put them back
        for tp, position in kept.items():
            consumer.seek(tp, position)
        for topic in topics:
            numbers = [tp.partition for tp in new if tp.topic == topic]
            stored = await self.backoff.retry(
                f"offset load {topic}", partial(self.sink.assign, topic, numbers)
            )
            for n in numbers:
                if n in stored:
                    consumer.seek(TopicPartition(topic, n), stored[n])
                else:
                    await consumer.seek_to_beginning(TopicPartition(topic, n))
        self.watched |= {t for t in topics if counts.get(t)}
        where = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in new)
        log.info("source %s: assigned %s", self.source.name, where or "nothing yet")

    async def _commit(self, result: FlushResult) -> None:
        del result  # the sink's offsets are the only ones: the owner's consumer has no group


def partitions_of(bootstrap: str, topics: list[str]) -> dict[str, list[int]]:
    """Each topic's partition numbers (blocking: run in a thread). The consumer's own metadata
    holds only the topics it already consumes, and a manual assignment needs them first."""
    if not topics:
        return {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="changefeed-owner-admin")
    try:
        return {
            str(t["name"]): sorted(int(p["partition_index"]) for p in t.get("partitions") or ())
            for t in admin.describe_topics(topics)
        }
    finally:
        admin.close()
