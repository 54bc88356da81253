"""A parsed Avro schema as a *plan*: the nested tuples the compiled codecs run from.

One walk of the schema (``fastavro.parse_schema``'s output, named types in ``__named_schemas``)
serves both codecs: ``streams.codecs.fastread`` turns a reader plan into straight-line Python, and
the optional native module (``changefeed_avro``, Rust, in ``streams/codecs/native``) interprets
reader and writer plans. Nodes:

    ("null",) ("boolean",) ("int",) ("long",) ("float",) ("double",) ("bytes",) ("string",)
    ("enum", symbols) ("fixed", size) ("array", item) ("map", values)
    ("record", field names, field plans, per field (value,) to write when a record lacks it, or ())
    ("union", branch plans)
    ("logical", plan, fastavro's conversion function, the schema node it converts)

The logical-type conversion is fastavro's own (its ``LOGICAL_READERS`` or ``LOGICAL_WRITERS``),
found as fastavro finds it, so converted values are fastavro's. A schema the plans do not cover
(a recursive record, an unknown type; for writing, also a logical type on a wrapped or named
type) raises ``Unsupported``: the caller keeps fastavro for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastavro.read import LOGICAL_READERS
from fastavro.schema import extract_logical_type
from fastavro.write import LOGICAL_WRITERS

Plan = tuple[Any, ...]
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class Unsupported(Exception):
    """The schema uses something the plans do not cover (the caller keeps fastavro)."""


class _Planner:
    def __init__(self, named: Mapping[str, Any], writing: bool) -> None:
        self.named = named
        self.writing = writing
        self.open: set[str] = set()  # records being planned: a recursive one is Unsupported

    def plan(self, schema: Any) -> Plan:
        if isinstance(schema, list):
            return ("union", tuple(self.plan(b) for b in schema))
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return (schema,)
            if schema in self.named:
                return self.plan(self.named[schema])
            msg = f"unknown type {schema!r}"
            raise Unsupported(msg)
        if not isinstance(schema, Mapping):
            msg = f"unexpected schema node {schema!r}"
            raise Unsupported(msg)
        kind = schema.get("type")
        if isinstance(kind, list | Mapping):
            if self.writing and "logicalType" in schema:
                msg = "a logical type on a wrapped type"
                raise Unsupported(msg)
            return self.plan(kind)  # a type wrapped in a dict: no logical type on it when reading
        if kind in PRIMITIVES:
            node: Plan = (kind,)
        elif kind == "record" or kind == "error":
            node = self.record(schema)
        elif kind == "enum":
            node = ("enum", tuple(schema["symbols"]))
        elif kind == "fixed":
            node = ("fixed", int(schema["size"]))
        elif kind == "array":
            node = ("array", self.plan(schema["items"]))
        elif kind == "map":
            node = ("map", self.plan(schema["values"]))
        elif isinstance(kind, str) and kind in self.named:
            if self.writing and "logicalType" in schema:
                msg = "a logical type on a named type"
                raise Unsupported(msg)
            node = self.plan(self.named[kind])
        else:
            msg = f"unknown type {kind!r}"
            raise Unsupported(msg)
        if "logicalType" in schema:
            # fastavro's own conversion for it, found as fastavro finds it.
            table = LOGICAL_WRITERS if self.writing else LOGICAL_READERS
            fn = table.get(extract_logical_type(schema))
            if fn is not None:
                node = ("logical", node, fn, schema)
        return node

    def record(self, schema: Mapping[str, Any]) -> Plan:
        name = str(schema.get("name"))
        if name in self.open:
            msg = f"recursive record {name}"
            raise Unsupported(msg)
        self.open.add(name)
        fields = schema["fields"]
        names = tuple(f["name"] for f in fields)
        node = ("record", names, tuple(self.plan(f["type"]) for f in fields), tuple(map(_missing, fields)))
        self.open.discard(name)
        return node


def _missing(field: Mapping[str, Any]) -> tuple[Any, ...]:
    """``(value,)``: what fastavro's writer writes for the field when a record lacks it, the
    field's default, else None when ``"null" in`` its type (fastavro's own test); ``()`` where
    fastavro raises instead."""
    if "default" in field:
        return (field["default"],)
    return (None,) if "null" in field["type"] else ()


def _plan(schema: Any, writing: bool) -> Plan:
    named = schema.get("__named_schemas", {}) if isinstance(schema, Mapping) else {}
    try:
        return _Planner(named, writing).plan(schema)
    except (KeyError, TypeError, ValueError) as exc:
        raise Unsupported(repr(exc)) from exc


def reader_plan(schema: Any) -> Plan:
    """The plan for reading values written with ``schema`` (parsed); ``Unsupported`` if none."""
    return _plan(schema, writing=False)


def writer_plan(schema: Any) -> Plan:
    """The plan for writing values with ``schema`` (parsed); ``Unsupported`` if none."""
    return _plan(schema, writing=True)
