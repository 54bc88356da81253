"""Who applies an atomic source: one worker at a time, elected through the sink.

Why one owner, and not the consumer group: a source transaction spans topics and partitions, and
applying it whole needs all of them in one process, in one order. The group's assignor spreads
partitions over workers (and librdkafka/aiokafka offer no custom assignor that keeps a source's
partitions together across both clients), so the owner reads them by manual assignment instead:
no rebalance ever splits a source, and there is one ordered stream of transactions per source.

Election: a session-level PostgreSQL advisory lock per source (``owner_lock_key``), taken on the
sink session the owner's flushes run on. Fencing lives in the sink: a worker whose session died
lost the lock with it and cannot flush (``OwnedSink`` never reconnects); a worker paused past
another's takeover finds its session gone or, if it still has it, still holds the lock — the
other worker never got it. Workers without the lock are standbys and try again every
``STANDBY_RETRY_S``. A new owner resumes from the sink: the stored offsets (at transaction
boundaries) and the stored progress of split transactions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from mode import Service

from streams.errors import ChangefeedError, TransientError
from streams.pipeline.assemble import handler_and_events
from streams.pipeline.atomic import (
    AtomicPipeline,
    OwnedSink,
    OwnershipLost,
    TransactionMetrics,
)
from streams.pipeline.clients import producer_kwargs, reader_kwargs
from streams.pipeline.loop import Pipeline
from streams.project import Project
from streams.project.sources import AtomicSource
from streams.settings import PipelineSettings, Settings
from streams.sinks.mapping import with_extra_columns

log = logging.getLogger(__name__)
STANDBY_RETRY_S = 3.0


class AtomicSourceService(Service):
    """Standby until it owns ``source``; then runs its ``AtomicPipeline`` until it stops or
    loses the ownership, and goes back to standby."""

    def __init__(
        self,
        settings: Settings,
        ps: PipelineSettings,
        project: Project,
        source: AtomicSource,
        conninfo: str,
        main: Pipeline,
        tx_metrics: TransactionMetrics,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.settings, self.ps, self.project, self.source = settings, ps, project, source
        self.conninfo, self.main, self.tx_metrics = conninfo, main, tx_metrics
        self.pipeline: AtomicPipeline | None = None
        self.closing = False  # set by on_stop: an election that ends after it must not run
        # A standby says 0 rather than nothing: a source no worker owns is then a series summing
        # to 0 (alert AtomicSourceUnowned), not an absent one no rule can see.
        tx_metrics.owner.labels(source=source.name).set(0)

    @Service.task
    async def _own(self) -> None:
        name = self.source.name
        while not self.should_stop and not self.closing:
            p: AtomicPipeline | None = None
            try:
                p = await self._elect()
                if p is not None and not self.closing:  # a worker stopping does not take over
                    self.pipeline = p
                    await p.run()
            except asyncio.CancelledError:
                raise
            except OwnershipLost as exc:
                log.warning("%s; standing by", exc)
            except ChangefeedError as exc:
                log.warning(
                    "source %s: owner stopped (%s: %s); electing again", name, type(exc).__name__, exc
                )
            except Exception:
                log.exception("source %s: owner crashed; electing again", name)
            finally:
                if p is not None:
                    await self._close(p)
                    self.pipeline = None
            if not self.should_stop and not self.closing:
                await self.sleep(STANDBY_RETRY_S)

    def _sink(self) -> OwnedSink:
        project = self.project
        mappings = with_extra_columns(project.static_mappings(), self.ps.extra_columns)
        return OwnedSink(
            self.conninfo,
            mappings,
            self.settings.worker.app_id,
            control_schema=self.ps.sink_schema,
            resolver=project.tables,
            source=self.source.name,
        )

    def _build(self, sink: OwnedSink) -> AtomicPipeline:
        """The owner's pipeline around ``sink`` (built only once the lock is held: a standby
        keeps no Kafka clients)."""
        s, w, project = self.settings, self.settings.worker, self.project
        consumer = AIOKafkaConsumer(
            **reader_kwargs(s.kafka, f"{w.app_id}-{self.source.name}-owner"), auto_offset_reset="earliest"
        )
        producer = AIOKafkaProducer(**producer_kwargs(s.kafka, w))
        handler, events = handler_and_events(s, self.ps, project, sink)
        p = AtomicPipeline(
            consumer, producer, sink, handler, self.ps, s.kafka, events,
            source=self.source, tx_metrics=self.tx_metrics, bootstrap=s.kafka.bootstrap_servers,
        )  # fmt: skip
        p.metrics = self.main.metrics  # one scrape endpoint: the worker's
        return p

    async def _elect(self) -> AtomicPipeline | None:
        """The pipeline, assigned and seeked, when this worker got the ownership; else None."""
        name = self.source.name
        sink = self._sink()
        try:
            await sink.connection()
        except (OwnershipLost, TransientError) as exc:
            await sink.close()
            log.debug("source %s: standby (%s)", name, exc)
            return None
        try:
            p = self._build(sink)
        except BaseException:
            await sink.close()  # the lock goes with the session
            raise
        log.info("source %s: this worker owns its transactions now", name)
        self.tx_metrics.owner.labels(source=name).set(1)
        try:
            await p.backoff.retry("sink schema setup", p.sink.ensure_schema)
            await p.producer.start()
            await p.consumer.start()
            existing = set(await p.consumer.topics())
            if self.source.transaction_topic not in existing:
                self._missing_transaction_topic()
            await p.assign_topics([t for t in self.source.topics if t in existing])
        except BaseException:
            await self._close(p)
            raise
        p.gate.restore(await p.backoff.retry("transaction progress", p.sink.load_progress), time.monotonic())
        if p.gate.txs:
            log.info("source %s: resuming split transactions %s", name, ", ".join(sorted(p.gate.txs)))
        return p

    def _missing_transaction_topic(self) -> None:
        """Said, not fatal: Debezium creates the topic with the first transaction it streams (a
        fresh connector has only snapshot records, which pass through); the owner assigns it
        when it appears. Records with a transaction id but no END are applied in parts at the
        deadline, with their own warning."""
        log.warning(
            "source %s is atomic but its topic %s does not exist (yet): if its connector streamed"
            " changes already, it does not provide transaction metadata; run `changefeed"
            " connectors apply` (it sets provide.transaction.metadata=true on the connectors the"
            " tables file marks atomic)",
            self.source.name, self.source.transaction_topic,
        )  # fmt: skip

    async def _close(self, p: AtomicPipeline) -> None:
        p.stopping.set()
        self.tx_metrics.owner.labels(source=self.source.name).set(0)
        async with p.lock:
            for close in (p.consumer.stop, p.events.close, p.producer.stop, p.sink.close):
                try:
                    await close()
                except Exception as exc:  # closing what may never have started
                    log.debug("source %s: close: %s", self.source.name, exc)

    async def on_stop(self) -> None:
        self.closing = True
        p = self.pipeline
        if p is not None:
            p.stopping.set()
            async with p.lock:  # the batch in flight finishes first
                pass
