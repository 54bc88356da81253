"""Domain events onto their Kafka topics: Avro (TopicRecordNameStrategy) + CloudEvents headers.

Encoders are resolved once per record name from the registry's latest version of
``<topic>-<record full name>``; contracts are registered by ``changefeed schemas register``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from streams.codecs import AvroEncoder, SchemaLookup
from streams.errors import ConfigError
from streams.project.events import DomainEvent
from streams.registry.client import RegistryClient

CE_SPECVERSION = b"1.0"


class Producer(Protocol):
    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> object: ...


_SPECVERSION = ("ce_specversion", CE_SPECVERSION)
_CONTENT_TYPE = ("content-type", b"application/avro")


def ce_headers(e: DomainEvent) -> list[tuple[str, bytes]]:
    return [
        ("ce_id", e.id.encode()),
        ("ce_type", e.record.encode()),
        ("ce_source", e.source.encode()),
        ("ce_time", e.time.isoformat().encode()),
        _SPECVERSION,
        ("ce_subject", e.subject.encode()),
        _CONTENT_TYPE,
    ]


class Encoders:
    def __init__(self, registry: RegistryClient, native: bool = True) -> None:
        self._registry = registry
        self._native = native
        self._by_subject: dict[str, AvroEncoder] = {}

    def encode(self, e: DomainEvent) -> bytes:
        subject = f"{e.topic}-{e.record}"
        encoder = self._by_subject.get(subject)
        if encoder is None:
            latest = self._registry.latest(subject)
            if latest is None:
                msg = f"subject {subject} is not registered; run `changefeed schemas register`"
                raise ConfigError(msg)
            lookup: SchemaLookup = self._registry
            encoder = AvroEncoder.for_source(latest.schema_id, latest.source, lookup, self._native)
            self._by_subject[subject] = encoder
        return encoder.encode(e.to_avro())


class Outgoing(NamedTuple):
    """An encoded domain event, keyed by subject so one entity's events stay ordered.

    A named tuple, not a frozen dataclass: as immutable, built in a fifth of the time (~1 µs
    less per event).
    """

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]

    @classmethod
    def of(cls, e: DomainEvent, encoders: Encoders) -> Outgoing:
        return cls(e.topic, e.subject.encode(), encoders.encode(e), ce_headers(e))


async def publish(producer: Producer, events: Sequence[Outgoing]) -> list[object]:
    """Queue every event; the caller awaits the returned futures before committing anything."""
    return [await producer.send(o.topic, value=o.value, key=o.key, headers=o.headers) for o in events]
