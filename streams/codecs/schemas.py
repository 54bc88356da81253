"""Writer schemas by id, fetched once from the registry and parsed once for fastavro."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from fastavro import parse_schema

from streams.errors import MessageOrigin, RegistryRequestError, UnknownSchemaError
from streams.registry.errors import ErrorCode
from streams.registry.schema import Reference, SchemaSource

# An unknown id is remembered this long, so a burst of poison messages costs one registry call,
# while an id registered moments later (a producer racing us) is still found soon after.
UNKNOWN_ID_TTL_S = 30.0


class SchemaLookup(Protocol):
    """What the codecs need from a registry (``RegistryClient`` provides it)."""

    def schema_by_id(self, schema_id: int) -> SchemaSource: ...

    def referenced(self, ref: Reference) -> SchemaSource: ...


def parse_for_fastavro(source: SchemaSource, lookup: SchemaLookup) -> Any:
    """Parse with every referenced named type defined first (fastavro needs them by name)."""
    named: dict[str, Any] = {}
    _define(source.references, lookup, named, set())
    return parse_schema(json.loads(source.text), named_schemas=named)


def _define(
    refs: tuple[Reference, ...], lookup: SchemaLookup, named: dict[str, Any], seen: set[Reference]
) -> None:
    for ref in refs:
        if ref in seen:
            continue
        seen.add(ref)
        target = lookup.referenced(ref)
        _define(target.references, lookup, named, seen)
        if ref.name not in named:
            parse_schema(json.loads(target.text), named_schemas=named)


class WriterSchemas:
    def __init__(self, lookup: SchemaLookup) -> None:
        self._lookup = lookup
        self._parsed: dict[int, Any] = {}
        self._unknown_until: dict[int, float] = {}

    def get(self, schema_id: int, origin: MessageOrigin | None = None) -> Any:
        """The parsed writer schema; ``UnknownSchemaError`` if the registry has never issued the id.

        ``RegistryUnavailableError`` (transient) propagates: the caller retries the same message.
        """
        parsed = self._parsed.get(schema_id)
        if parsed is not None:
            return parsed
        if self._unknown_until.get(schema_id, 0.0) > time.monotonic():
            msg = f"schema id {schema_id} is not in the registry"
            raise UnknownSchemaError(msg, origin)
        try:
            source = self._lookup.schema_by_id(schema_id)
        except RegistryRequestError as exc:
            if exc.error_code != ErrorCode.SCHEMA_NOT_FOUND:
                raise
            self._unknown_until[schema_id] = time.monotonic() + UNKNOWN_ID_TTL_S
            msg = f"schema id {schema_id} is not in the registry"
            raise UnknownSchemaError(msg, origin) from exc
        parsed = self._parsed[schema_id] = parse_for_fastavro(source, self._lookup)
        return parsed
