"""Parsing schemas as clients send them, with references, into a comparable canonical form.

Equality is by canonical form: the parsed schema (references inlined) re-serialized with sorted
keys and no whitespace. Unlike Avro's Parsing Canonical Form it keeps ``default``, ``doc`` and
``aliases``, because a changed default changes how readers resolve data and deserves a new version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from avro.errors import AvroException
from avro.name import Names
from avro.schema import Schema, make_avsc_object

from streams.registry.errors import ErrorCode, RegistryError

AVRO = "AVRO"
SUPPORTED_TYPES = (AVRO,)


@dataclass(frozen=True)
class Reference:
    """A named type this schema uses from another subject's version."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}

    @classmethod
    def from_json(cls, raw: Any) -> Reference:
        if not isinstance(raw, dict) or not isinstance(raw.get("version"), int):
            msg = f"Invalid reference {raw!r}: need name, subject, version"
            raise RegistryError(ErrorCode.INVALID_SCHEMA, msg)
        return cls(str(raw.get("name", "")), str(raw.get("subject", "")), raw["version"])


@dataclass(frozen=True)
class SchemaSource:
    """A schema as text plus the references it needs to parse."""

    text: str
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True)
class ParsedSchema:
    source: SchemaSource
    canonical: str
    avro: Schema


ResolveReference = Callable[[Reference], SchemaSource]


def compact(text: str) -> str:
    """The stored form of a schema's text: the client's JSON without insignificant whitespace."""
    return json.dumps(json.loads(text), separators=(",", ":"))


def parse(source: SchemaSource, resolve: ResolveReference, schema_type: str = AVRO) -> ParsedSchema:
    """Parse ``source``; raise 42201 with the parser's reason if it is not a valid Avro schema."""
    if schema_type.upper() not in SUPPORTED_TYPES:
        msg = f"Unsupported schema type {schema_type!r}; supported: AVRO"
        raise RegistryError(ErrorCode.INVALID_SCHEMA, msg)
    names = Names(validate_names=True)
    try:
        _load_references(source.references, resolve, names, seen=set())
        schema = make_avsc_object(json.loads(source.text), names)
        text = compact(source.text)
    except (AvroException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise RegistryError(ErrorCode.INVALID_SCHEMA, f"Invalid schema: {exc}") from exc
    canonical = json.dumps(schema.to_json(), sort_keys=True, separators=(",", ":"))
    return ParsedSchema(SchemaSource(text, source.references), canonical, schema)


def _load_references(
    references: tuple[Reference, ...], resolve: ResolveReference, names: Names, seen: set[Reference]
) -> None:
    """Define every referenced named type (depth first) so the main schema can use them by name."""
    for ref in references:
        if ref in seen:
            continue
        seen.add(ref)
        target = resolve(ref)
        _load_references(target.references, resolve, names, seen)
        if names.get_name(ref.name, None) is None:
            make_avsc_object(json.loads(target.text), names)
