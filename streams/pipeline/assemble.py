"""What every pipeline of a worker is built from besides its consumer and sink: the record
handler (decoder, the project's transforms, the encoders and rebuilt before images) and the
domain-event producer. The group's pipeline (streams.app) and an atomic source's owner
(streams.pipeline.owner) are assembled the same way."""

from __future__ import annotations

import logging

from streams.codecs import AvroDecoder
from streams.codecs.avro import NATIVE
from streams.pipeline.clients import events_producer_config
from streams.pipeline.events_out import LibrdkafkaEvents
from streams.pipeline.events_proc import ProcessEvents
from streams.pipeline.handle import Handler
from streams.pipeline.publisher import Encoders
from streams.pipeline.publishing import EventProducer, InlineEvents
from streams.project import Project
from streams.registry.client import RegistryClient
from streams.settings import PipelineSettings, Settings
from streams.sinks import AsyncPostgresSink
from streams.sinks.previous import PreviousRows

log = logging.getLogger(__name__)


def handler_and_events(
    settings: Settings, ps: PipelineSettings, project: Project, sink: AsyncPostgresSink
) -> tuple[Handler, EventProducer | None]:
    registry = RegistryClient(settings.registry.url)
    if not NATIVE and "native" in (settings.worker.avro_reader, settings.worker.avro_writer):
        log.warning(
            "the native Avro codec (changefeed_avro) is not installed: decoding and encoding in"
            " Python, at about twice the CPU per event; install it with"
            " `pip install ./streams/codecs/native` (needs Rust's cargo), or set"
            ' [worker] avro_reader = "compiled" and avro_writer = "fastavro" to silence this'
        )
    native_writer = settings.worker.avro_writer == "native"
    encoders = Encoders(registry, native_writer) if ps.publish_domain_events else None
    # Only the transforms' events need the rebuilt before image; without publishing, skip it.
    before = project.registry.before
    previous = PreviousRows(sink, before) if encoders is not None and before else None
    decoder = AvroDecoder(registry, reader=settings.worker.avro_reader)
    handler = Handler(decoder, project.registry, encoders, sink, previous)
    if encoders is None:
        return handler, None
    config = events_producer_config(settings.kafka, settings.worker)
    max_bytes = settings.kafka.max_message_bytes
    if settings.worker.publisher == "process":
        return handler, ProcessEvents(config, settings.registry.url, max_bytes, native=native_writer)
    return handler, InlineEvents(LibrdkafkaEvents(config), encoders, max_bytes)
