"""The worker as a Faust app: the materializer as a service of the app, the bus as its agents.

Two consumers share one process and one lifecycle:

* the app's agents consume the domain topics through Faust's consumer in the group
  ``<worker app id>-bus`` (Faust commits the offsets every event's agents acked, every
  ``[bus] commit_interval_s``); every agent iterates a ``noack`` stream and acks an event only
  once its work is durable (published, committed, or dead-lettered), one event at a time
  (never ``concurrency > 1``);
* the materializer (``streams.app.PipelineService``) keeps its own aiokafka consumer in the group
  ``<worker app id>`` and its offsets in the sink (streams/pipeline/README.md says why it cannot
  be a Faust agent). Different groups, because the two consumers use different assignors.

With nothing for Faust to consume (no handlers, no bridge enabled) the app runs producer-only:
Faust's consumer crashes without agent topics (and Faust cannot subscribe to a pattern), so it
is not started, and the app only hosts the services.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from mode import Service
from psycopg.conninfo import make_conninfo

from streams.bus.bridges import CloudEvent, NatsBridge, RedisBridge
from streams.bus.dlq import headers_of, send_dead_letter
from streams.bus.handlers import Handlers, load_handlers
from streams.bus.ledger import HandlerRunner, is_transient
from streams.bus.records import DomainEventRecord, record_of
from streams.bus.retry import Backoff
from streams.codecs import AvroDecoder
from streams.errors import MessageOrigin, TransientError
from streams.pipeline.topics import ensure_topics
from streams.registry.client import RegistryClient
from streams.settings import Settings
from streams.sinks import conninfo_from

log = logging.getLogger(__name__)
Bridge = NatsBridge | RedisBridge


def bus_group(settings: Settings) -> str:
    """The agents' consumer group (the Faust app id); the materializer's is the worker app id."""
    return f"{settings.worker.app_id}-bus"


class BusApp(faust.App):
    """A Faust app that runs producer-only when, at start, it has no agent (see the docstring)."""

    def on_init_dependencies(self) -> Any:
        if not self.agents:
            self.producer_only = True
        return super().on_init_dependencies()


def create_app(settings: Settings) -> faust.App:
    """A Faust app fit for this worker: no web server, memory tables, our failover timings."""
    w, k = settings.worker, settings.kafka
    # Faust's data dir holds nothing with memory tables; keep it out of the working directory.
    datadir = settings.stack.state_dir / "bus" / f"{bus_group(settings)}-data"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return BusApp(
        bus_group(settings),
        broker=f"kafka://{k.bootstrap_servers}",
        autodiscover=False,
        web_enabled=False,
        store="memory://",
        datadir=str(datadir),
        # No tables, no leader election: no internal topics to create.
        topic_disable_leader=True,
        topic_allow_declare=False,
        broker_commit_interval=settings.bus.commit_interval_s,
        # Not waiting for in-flight events at a rebalance: Faust clears every agent's queue
        # there, so a message one agent took and acked but another agent's queue held is never
        # acked by all of them, and the wait never ends (the rebalance hangs). The agents ack
        # only durable work and Faust commits only acked offsets, so not waiting is safe: an
        # event in flight is redelivered to the partition's next owner, whose bridges and
        # ledger drop the repeat.
        stream_wait_empty=False,
        broker_session_timeout=w.session_timeout_s,
        broker_heartbeat_interval=w.heartbeat_interval_s,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=k.max_message_bytes,
        producer_max_request_size=k.max_message_bytes,
    )


@dataclass
class Bus:
    """The app and what its agents do; ``stats`` counts per agent (logged at stop)."""

    settings: Settings
    app: faust.App
    topics: list[str]
    handlers: Handlers = field(default_factory=Handlers)
    bridges: list[Bridge] = field(default_factory=list)
    runner: HandlerRunner | None = None
    stats: Counter[str] = field(default_factory=Counter)
    agents: list[str] = field(default_factory=list)

    def backoff(self) -> Backoff:
        b = self.settings.bus
        return Backoff(b.backoff_initial_s, b.backoff_max_s)

    async def dead_letter(self, agent: str, message: Any, error: BaseException) -> None:
        log.warning(
            "%s: poison %s[%d]@%d to the DLQ: %s: %s",
            agent, message.topic, message.partition, message.offset, type(error).__name__, error,
        )  # fmt: skip
        max_bytes = self.settings.kafka.max_message_bytes

        async def send() -> None:
            await send_dead_letter(self.app.producer, message, error, max_bytes)

        await self.backoff().retry(f"{agent}: dead letter", send, lambda _: True)
        self.stats[f"{agent}.dead_letters"] += 1

    async def run_agent(self, agent: str, stream: Any, step: Callable[[Any], Awaitable[None]]) -> None:
        """Each event: ``step`` (which retries transient failures itself), poison to the DLQ, ack."""
        manual = stream.noack()
        async for event in manual.events():
            message = event.message
            try:
                await step(message)
            except Exception as exc:  # steps retry what is transient: the rest is poison
                await self.dead_letter(agent, message, exc)
            await manual.ack(event)
            self.stats[f"{agent}.events"] += 1

    def add_bridge(self, bridge: Bridge) -> None:
        name = f"bus-{bridge.name}"
        self.bridges.append(bridge)

        async def step(message: Any) -> None:
            event = CloudEvent.from_headers(headers_of(message), message.value or b"")  # poison if bad

            async def publish() -> bool:
                return await bridge.publish(event)

            stored = await self.backoff().retry(f"{name} publish", publish, bridge.transient)
            self.stats[f"{name}.published" if stored else f"{name}.duplicates"] += 1

        self._register(name, step)

    def add_handlers(self, handlers: Handlers, decoder: AvroDecoder) -> None:
        b = self.settings.bus
        db = self.settings.sink_postgres
        conninfo = make_conninfo(
            conninfo_from(db, application_name=f"{bus_group(self.settings)}-handlers"),
            dbname=b.handler_database,
        )
        runner = self.runner = HandlerRunner(conninfo, b.handler_schema, handlers)
        self.handlers = handlers
        name = "bus-handlers"

        async def step(message: Any) -> None:
            origin = MessageOrigin(message.topic, message.partition, message.offset)

            async def decode() -> DomainEventRecord:
                return record_of(decoder.decode(message.value or b"", origin))

            # The registry briefly down is transient; bytes that do not decode are poison.
            event = await self.backoff().retry(
                f"{name} decode", decode, lambda e: isinstance(e, TransientError)
            )
            failed: Exception | None = None
            for reg in handlers.for_event(event):

                async def apply(reg: Any = reg) -> bool:
                    return await runner.apply(reg, event, message)

                try:
                    ran = await self.backoff().retry(f"{name} {reg.name}", apply, is_transient)
                except Exception as exc:  # poison for this handler; the others still run
                    log.warning("handler %s failed on event %s: %s", reg.name, event.id, exc)
                    failed = failed or exc
                    continue
                self.stats[f"{name}.applied" if ran else f"{name}.duplicates"] += 1
            if failed is not None:
                raise failed

        self._register(name, step)

    def _register(self, name: str, step: Callable[[Any], Awaitable[None]]) -> None:
        """One agent (never ``concurrency > 1``) running ``step`` per message of the domain topics."""

        async def agent(stream: Any) -> None:
            await self.run_agent(name, stream, step)

        agent.__qualname__ = agent.__name__ = name.replace("-", "_")
        self.app.agent(self.app.topic(*self.topics, key_serializer="raw", value_serializer="raw"),
                       name=name)(agent)  # fmt: skip
        self.agents.append(name)

    def summary(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.stats.items())) or "no events"


class BusCloser(Service):
    """Started with the app; at stop, logs the counts and closes the bridges and the ledger."""

    def __init__(self, bus: Bus, **kw: Any) -> None:
        super().__init__(**kw)
        self.bus = bus

    async def on_stop(self) -> None:
        log.info("bus stopped: %s", self.bus.summary())
        for bridge in self.bus.bridges:
            await bridge.close()
        if self.bus.runner is not None:
            await self.bus.runner.close()


def host(app: faust.App, service: Service) -> None:
    """Start ``service`` with the app, after its consumer (Faust's ``app.service`` also takes an
    instance: it instantiates only classes), stopped with it."""
    app.service(cast(Any, service))


def build_bus(settings: Settings, domain_topics: list[str], handlers: Handlers | None = None) -> Bus:
    """The Faust app with the agents the settings enable (``bus.agents`` empty: nothing to run)."""
    b = settings.bus
    topics = list(b.topics) or domain_topics
    bus = Bus(settings, create_app(settings), topics)
    handlers = load_handlers(b.handler_modules, handlers)
    if topics and b.nats.enabled:
        bus.add_bridge(NatsBridge(b.nats))
    if topics and b.redis.enabled:
        bus.add_bridge(RedisBridge(b.redis))
    if topics and handlers:
        bus.add_handlers(handlers, AvroDecoder(RegistryClient(settings.registry.url)))
    if bus.agents:
        # The DLQs of the domain topics (partitions mirrored), created before Faust subscribes.
        kafka, partitions = settings.kafka.bootstrap_servers, settings.pipeline.created_topic_partitions
        ensure_topics(kafka, topics, topics, partitions)
        host(bus.app, BusCloser(bus))
    return bus
