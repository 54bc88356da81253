"""The worker runtime: the pipeline as a ``mode`` service, run by Faust's worker machinery.

Faust's own consumer cannot host this pipeline (see streams/pipeline/README.md): its recovery
re-seeks every partition to Kafka's committed offsets *after* ``on_partitions_assigned``, which
would undo the seek to the sink's offsets, and with no agent topics it crashes on aiokafka 0.14.
So the per-partition loop drives aiokafka directly, and ``mode`` (the service runtime Faust is
built on) gives it Faust's lifecycle: signal handling, ordered start/stop, logging. The worker
process is a ``faust.App`` (streams/bus) hosting these services beside the event bus's agents.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
from collections.abc import Iterable
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]  # no py.typed
from mode import Service, Worker
from psycopg.conninfo import make_conninfo

from streams.connect.heal import HealService
from streams.connect.health import slot_health
from streams.errors import ChangefeedError
from streams.pipeline import Pipeline, PipelineSettings, Rebalance
from streams.pipeline.assemble import handler_and_events
from streams.pipeline.ck_consumer import CkConsumer, consumer_config
from streams.pipeline.clients import consumer_kwargs, producer_kwargs
from streams.pipeline.shutdown import stop_pipeline
from streams.pipeline.topics import ensure_topics
from streams.project import Project, load_project
from streams.settings import Settings
from streams.sinks import AsyncPostgresSink
from streams.sinks.mapping import with_extra_columns
from streams.sinks.roles import worker_login_conninfo
from streams.stop_signals import bounded_worker

log = logging.getLogger(__name__)


def sink_application_name(app_id: str, pid: int | None = None) -> str:
    """The worker's sink sessions' ``application_name``: ``<app id>-<pid>``."""
    return f"{app_id}-{os.getpid() if pid is None else pid}"


# A worker's flush transactions are never idle between statements for more than milliseconds; a
# session idle inside one for this long belongs to a stopped or hung process, and the server ends
# it so the partition lock and row locks it holds do not stall the partition's new owner.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000


# The pipeline's share of the worker's shutdown timeout; the rest is for Faust's own services
# (the event bus's producer) before the watchdog ends the process.
PIPELINE_STOP_SHARE = 0.75


def worker_conninfo(settings: Settings, app_id: str) -> str:
    """The sink connection string of this worker process (named, with the idle bound)."""
    # The workers' least-privilege login (streams/sinks/roles.py), never the admin login.
    base = worker_login_conninfo(settings, application_name=sink_application_name(app_id))
    idle = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    return make_conninfo(base, options=idle)


def topics_pattern(topics: Iterable[str]) -> str:
    """An anchored regex matching exactly these topic names."""
    return "^(" + "|".join(re.escape(t) for t in topics) + ")$"


class PipelineService(Service):
    """Owns the consumer, producer and sink; stops cleanly after the batch in flight."""

    def __init__(self, settings: Settings, pipeline: PipelineSettings, **kw: Any) -> None:
        super().__init__(**kw)
        self.settings, self.ps = settings, pipeline
        self.pipeline: Pipeline | None = None
        self._running: asyncio.Task[Any] | None = None
        # Loaded first: a bad tables file or transform module (ConfigError) fails the start
        # before any client, topic or table is touched.
        self.project: Project = load_project(settings)

    @property
    def topics(self) -> list[str]:
        """What this worker consumes: the project's topics, unless the settings list their own."""
        if self.ps.topics:
            return list(self.ps.topics)
        # An atomic source's topics are read by its owner (streams.pipeline.owner), not the group.
        return [t for t in self.project.subscriptions if t not in self.project.atomic_topics]

    def _build(self) -> Pipeline:
        s, w, project = self.settings, self.settings.worker, self.project
        # Named after the worker so operators can tell its sessions apart in pg_stat_activity.
        conninfo = worker_conninfo(s, w.app_id)
        mappings = with_extra_columns(project.static_mappings(), self.ps.extra_columns)
        sink = AsyncPostgresSink(
            conninfo, mappings, w.app_id, control_schema=self.ps.sink_schema, resolver=project.tables
        )
        consumer = (
            CkConsumer(consumer_config(s.kafka, w))
            if w.consumer == "librdkafka"
            else AIOKafkaConsumer(**consumer_kwargs(s.kafka, w))
        )
        producer = AIOKafkaProducer(**producer_kwargs(s.kafka, w))
        handler, events = handler_and_events(s, self.ps, project, sink)
        return Pipeline(consumer, producer, sink, handler, self.ps, s.kafka, events)

    async def on_start(self) -> None:
        # Built first: a bad mapping (ConfigError) fails the start before any topic or table is touched.
        p = self.pipeline = self._build()
        domain = sorted(self.project.registry.domain_topics) if self.ps.publish_domain_events else []
        atomic = [t for a in self.project.atomic for t in sorted(a.collections)]
        ensure_topics(
            self.settings.kafka.bootstrap_servers,
            self.topics + atomic,
            domain,
            self.ps.created_topic_partitions,
        )
        await p.backoff.retry("sink schema setup", p.sink.ensure_schema)
        p.metrics.watch_slots(partial(slot_health, self.settings.source_postgres))
        p.metrics.serve(self.settings.worker.metrics_port)
        await p.producer.start()
        # A pattern, not a list: Connect creates a change topic with its first record, so on a
        # fresh stack some do not exist yet, and a list subscription fails the start on them.
        log.info("consuming %s", ", ".join(self.topics))
        p.consumer.subscribe(pattern=topics_pattern(self.topics), listener=Rebalance(p))
        await p.consumer.start()
        await self._own_atomic_sources(p)
        p.metrics.probes.started = True
        tune_gc()

    async def _own_atomic_sources(self, main: Pipeline) -> None:
        """One owner-or-standby service per atomic source (streams.pipeline.owner)."""
        if not self.project.atomic:
            return
        if self.ps.topics:  # the override names what to read: said, never silently different
            names = ", ".join(s.name for s in self.project.atomic)
            log.warning(
                "[pipeline] topics is set: the atomic sources (%s) are read by this worker's group"
                " and applied per change; unset it to apply their transactions whole", names,
            )  # fmt: skip
            return
        from streams.pipeline.atomic import TransactionMetrics
        from streams.pipeline.owner import AtomicSourceService

        metrics = TransactionMetrics(main.metrics.registry)
        conninfo = worker_conninfo(self.settings, self.settings.worker.app_id)
        for source in self.project.atomic:
            log.info(
                "source %s: transactions applied atomically (one owner, elected in the sink)", source.name
            )
            service = AtomicSourceService(
                self.settings, self.ps, self.project, source, conninfo, main, metrics, beacon=self.beacon
            )
            await self.add_runtime_dependency(service)

    @Service.task
    async def _consume(self) -> None:
        assert self.pipeline is not None
        self._running = asyncio.current_task()  # the poll loop: a stop that times out cancels it
        try:
            await self.pipeline.run()
        except ChangefeedError as exc:
            log.info("pipeline stopped: %s", exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: stop the worker (nothing was committed past it)
            log.exception("pipeline crashed; stopping the worker")
            await self.crash(exc)

    async def on_stop(self) -> None:
        p = self.pipeline
        if p is None:
            return
        # Bounded, and the consumer is stopped with no pipeline lock held (streams/pipeline/shutdown.py).
        budget = PIPELINE_STOP_SHARE * self.settings.worker.shutdown_timeout_s
        await stop_pipeline(p, self._running, budget)
        log.info("pipeline stopped: %s", p.stats)


def build_worker(settings: Settings, pipeline: PipelineSettings, loglevel: str = "INFO") -> Worker:
    return faust_worker(hosted_app(settings, pipeline), loglevel, settings.worker.shutdown_timeout_s)


def hosted_app(settings: Settings, pipeline: PipelineSettings) -> Any:
    """The worker's Faust app: these services hosted beside the event bus's agents (streams/bus)."""
    service = PipelineService(settings, pipeline)
    services: list[Service] = [service]
    if settings.worker.heal_connectors and service.project.connectors:
        # Restarts the project's failed connector tasks whose cause is transient (streams.connect.heal).
        services.append(HealService(settings, names=service.project.connectors))
    # With no agent the app runs producer-only (Faust's consumer crashes without topics).
    from streams.bus.app import build_bus, host

    bus = build_bus(settings, sorted(service.project.registry.domain_topics))
    for s in services:
        host(bus.app, s)
    return bus.app


def faust_worker(app: Any, loglevel: str, shutdown_timeout_s: float = 30.0) -> Worker:
    """Faust's worker, its stop bounded by ``shutdown_timeout_s`` (streams/stop_signals.py)."""
    worker: Worker = bounded_worker(app, loglevel, shutdown_timeout_s)
    return worker


# A batch allocates a few objects per record (decoded dicts, writes) that live until its flush:
# with the default gen-0 threshold (700) the collector ran every few records and rescanned the
# batch's survivors each time. What the start-up imported is frozen out of every collection.
# 500k rather than 50k: a 5,000-record batch holds ~50k tracked objects, so 50k still collected
# about once a batch (6.5% of the worker's CPU); reference counting frees everything that is not
# in a cycle anyway, so the higher threshold costs ~5 MB (measured: 0.039 vs 0.041-0.044 CPU s/1k).
GC_GEN0_THRESHOLD = 500_000


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
