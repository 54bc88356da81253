"""Avro binary for one parsed schema, compiled once into nested writers (the domain events' hot path).

fastavro's ``schemaless_writer`` interprets the schema for every record: it re-checks the parsed
schema per call and, per union, validates the value against its branches. A domain event is a few
strings and longs, nullable fields and a named record, encoded thousands of times a second with
the same schema: compiled once, its writers only append to one ``bytearray``.

The compiled path takes only what it is sure to write exactly as fastavro does: values of the
exact types (``str``, ``int``, ``bool``, ``dict``, ``None``, enum symbols), logical types through
fastavro's own converters, unions of null and one other type. Anything else it meets raises
``Fallback`` (or a type error), and the caller hands that record to fastavro, which writes it or
raises its own error. A schema with types it does not know (arrays, maps, floats, bytes, fixed,
wider unions, recursive records) is not compiled at all (``compile_writer`` returns ``None``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from fastavro.logical_writers import LOGICAL_WRITERS

Write = Callable[[bytearray, Any], None]
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_MISSING = object()
_EPOCH_DAY = date(1970, 1, 1).toordinal()


class Fallback(Exception):
    """This value is not one the compiled writers take: encode the record with fastavro."""


class _Unsupported(Exception):
    """The schema uses something the compiled writers do not do."""


def varint(out: bytearray, n: int) -> None:
    """Append ``n`` (already zig-zagged, 0 <= n < 2**64) as Avro's variable-length integer."""
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _long(lo: int, hi: int) -> Write:
    def write(out: bytearray, datum: Any) -> None:
        if type(datum) is not int or not lo <= datum <= hi:
            raise Fallback
        n = (datum << 1) ^ (datum >> 63)
        if n < 0x80:
            out.append(n)
        else:
            varint(out, n)

    return write


def _string(out: bytearray, datum: Any) -> None:
    if type(datum) is not str:
        raise Fallback
    b = datum.encode()
    n = len(b) << 1
    if n < 0x80:
        out.append(n)
    else:
        varint(out, n)
    out += b


def _boolean(out: bytearray, datum: Any) -> None:
    if type(datum) is not bool:
        raise Fallback
    out.append(1 if datum else 0)


def _null(out: bytearray, datum: Any) -> None:
    if datum is not None:
        raise Fallback


def _enum(symbols: list[str]) -> Write:
    index = {s: i for i, s in enumerate(symbols)}

    def write(out: bytearray, datum: Any) -> None:
        i = index.get(datum) if type(datum) is str else None
        if i is None:
            raise Fallback
        varint(out, i << 1)

    return write


def _logical(prepare: Callable[[Any, Any], Any], schema: Any, inner: Write) -> Write:
    def write(out: bytearray, datum: Any) -> None:
        inner(out, prepare(datum, schema))

    return write


def _utc_micros(prepare: Callable[[Any, Any], Any], schema: Any, inner: Write) -> Write:
    """timestamp-micros: a UTC ``datetime`` (every event time) in integer arithmetic, the same
    number fastavro's converter computes through a timedelta (it was a third of an event's
    encoding); any other value goes through that converter."""

    def write(out: bytearray, datum: Any) -> None:
        if type(datum) is datetime and datum.tzinfo is UTC:
            days = datum.toordinal() - _EPOCH_DAY
            seconds = days * 86400 + datum.hour * 3600 + datum.minute * 60 + datum.second
            inner(out, seconds * 1_000_000 + datum.microsecond)
        else:
            inner(out, prepare(datum, schema))

    return write


def _record(fields: list[tuple[str, Any, bool, Write]]) -> Write:
    def write(out: bytearray, datum: Any) -> None:
        if type(datum) is not dict:
            raise Fallback
        get = datum.get
        for name, default, required, field_write in fields:
            value = get(name, _MISSING)
            if value is _MISSING:
                if required:
                    raise Fallback  # fastavro: "no value and no default"
                value = default
            field_write(out, value)

    return write


def _nullable(null_index: int, other_index: int, other: Write) -> Write:
    null_tag, other_tag = bytes([null_index << 1]), bytes([other_index << 1])

    def write(out: bytearray, datum: Any) -> None:
        if datum is None:
            out += null_tag
        else:
            out += other_tag
            other(out, datum)

    return write


PRIMITIVES: dict[str, Write] = {
    "null": _null,
    "boolean": _boolean,
    "string": _string,
    "int": _long(_INT_MIN, _INT_MAX),
    "long": _long(_LONG_MIN, _LONG_MAX),
}


class _Compiler:
    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.done: dict[str, Write] = {}
        self.busy: set[str] = set()

    def of(self, schema: Any) -> Write:
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return PRIMITIVES[schema]
            return self._named(schema)
        if isinstance(schema, list):
            return self._union(schema)
        if not isinstance(schema, dict):
            raise _Unsupported(repr(schema))
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if logical is not None:
            prepare = LOGICAL_WRITERS.get(f"{kind}-{logical}")
            inner = self.of({k: v for k, v in schema.items() if k != "logicalType"})
            if prepare is None:
                return inner
            wrap = _utc_micros if f"{kind}-{logical}" == "long-timestamp-micros" else _logical
            return wrap(prepare, schema, inner)
        if kind == "record":
            return self._define(schema, self._record)
        if kind == "enum":
            return self._define(schema, lambda s: _enum(list(s["symbols"])))
        if isinstance(kind, str) and kind in PRIMITIVES:
            return PRIMITIVES[kind]
        raise _Unsupported(str(kind))

    def _named(self, name: str) -> Write:
        if name in self.done:
            return self.done[name]
        if name in self.busy or name not in self.named:
            raise _Unsupported(name)  # recursive (or unknown) named types stay with fastavro
        return self.of(self.named[name])

    def _define(self, schema: dict[str, Any], build: Callable[[dict[str, Any]], Write]) -> Write:
        name = schema.get("name")
        if not isinstance(name, str):
            return build(schema)
        if name in self.done:
            return self.done[name]
        if name in self.busy:
            raise _Unsupported(name)
        self.busy.add(name)
        write = self.done[name] = build(schema)
        self.busy.discard(name)
        return write

    def _record(self, schema: dict[str, Any]) -> Write:
        fields = []
        for f in schema["fields"]:
            t = f["type"]
            # The condition fastavro raises "no value and no default" on, as it is written there.
            required = "default" not in f and "null" not in t
            fields.append((f["name"], f.get("default"), required, self.of(t)))
        return _record(fields)

    def _union(self, branches: list[Any]) -> Write:
        if len(branches) != 2 or "null" not in branches:
            raise _Unsupported(repr(branches))
        null_index = branches.index("null")
        other = branches[1 - null_index]
        if other == "null" or isinstance(other, list):
            raise _Unsupported(repr(branches))
        resolved = self.named.get(other, other) if isinstance(other, str) else other
        if isinstance(resolved, dict) and resolved.get("type") == "record":
            msg = "a record in a union"  # fastavro picks among record branches by field count
            raise _Unsupported(msg)
        return _nullable(null_index, 1 - null_index, self.of(other))


def compile_writer(schema: Any) -> Write | None:
    """The writer of a fastavro-parsed ``schema``, or ``None`` when fastavro must do it."""
    named = schema.get("__named_schemas", {}) if isinstance(schema, dict) else {}
    try:
        return _Compiler(named).of(schema)
    except _Unsupported:
        return None
