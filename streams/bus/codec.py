"""Faust's view of the Confluent Avro wire format, backed by our registry.

``DomainEventSchema`` turns a domain topic's bytes into typed records (``records.py``), so an
agent written as ``@app.agent(domain_topic(app, registry, "domain.customers"))`` iterates
``CustomerEmailChanged`` objects and never touches bytes. ``ConfluentAvroCodec`` is the same
decoding as a plain Faust codec (dicts), for ``value_serializer=``.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.serializers.codecs import Codec

from streams.bus.records import DomainEventRecord, record_of
from streams.codecs import AvroDecoder
from streams.codecs.schemas import SchemaLookup
from streams.errors import MessageOrigin, PermanentError


class ConfluentAvroCodec(Codec):
    """Confluent-framed Avro → dict (decoding only: domain events are produced by the materializer)."""

    def __init__(self, lookup: SchemaLookup, **kw: Any) -> None:
        super().__init__(**kw)
        self._decoder = AvroDecoder(lookup)

    def _loads(self, s: bytes) -> Any:
        return self._decoder.decode(s)

    def _dumps(self, s: Any) -> bytes:
        msg = "domain events are produced by the worker's materializer (streams.pipeline.publisher)"
        raise PermanentError(msg)


def origin_of(message: Any) -> MessageOrigin:
    return MessageOrigin(message.topic, message.partition, message.offset)


class DomainEventSchema(faust.Schema[Any, Any]):
    """Keys as text (the entity id), values as the typed record their CloudEvents type names."""

    def __init__(self, lookup: SchemaLookup) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")
        self._decoder = AvroDecoder(lookup)

    def decode_value(self, message: Any) -> DomainEventRecord:
        return record_of(self._decoder.decode(message.value, origin_of(message)))

    def loads_value(self, app: Any, message: Any, *, loads: Any = None, serializer: Any = None) -> Any:
        return self.decode_value(message)

    def loads_key(self, app: Any, message: Any, *, loads: Any = None, serializer: Any = None) -> Any:
        key = message.key
        return key.decode() if isinstance(key, bytes | bytearray) else key


def domain_topic(app: faust.App, lookup: SchemaLookup, *names: str) -> Any:
    """A Faust topic over domain topics whose values are typed domain-event records."""
    return app.topic(*names, schema=DomainEventSchema(lookup))
