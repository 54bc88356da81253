"""Debezium's semantic types → Python values a database driver binds correctly.

Debezium marks each row field's meaning in the Avro schema as ``connect.name``, e.g.
``io.debezium.time.Date`` on an ``int``. The values arrive as what Avro can carry (days as
``int``, instants as ISO-8601 text, JSON as text), so a sink column of type ``date`` or
``timestamptz`` needs them converted. One table keyed by that name converts every mapped column
the same way, whatever its source table.

``decimal.handling.mode`` stays at Debezium's default ``precise``: ``bytes`` with the Avro
``decimal`` logical type, which fastavro already turns into an exact ``Decimal`` (``string``
would also be exact but costs a parse and loses the declared scale; ``double`` loses cents).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from streams.cdc.pgtext import (
    INFINITY,
    MICROS_PER_DAY,
    MINUS_INFINITY,
    PgLiteral,
    array_literal,
    date_text,
    in_python_range,
    iso_extended,
    time_text,
    timestamp_text,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
_MIDNIGHT = datetime.combine(_EPOCH_DATE, time(), tzinfo=UTC)
# ``infinity``/``-infinity`` of timestamp and date, as Debezium sends them (measured on the local
# stack). (Micro|Nano)Timestamp: the JDBC driver's infinity milliseconds, passed on unchanged.
# Date, in the snapshot and in arrays: those milliseconds divided into days that wrap around a
# 32-bit int; streamed from pgoutput: PostgreSQL's own INT32_MAX/INT32_MIN days since 2000-01-01
# shifted to 1970 with the same wrap. All four lie far outside PostgreSQL's date range.
_TS_INFINITY, _TS_MINUS_INFINITY = 9223372036825200000, -9223372036832400000
_DATE_INFINITY = {
    -622191234: INFINITY,
    -625821272: MINUS_INFINITY,
    -2147472692: INFINITY,
    -2147472691: MINUS_INFINITY,
}
ARRAY_PREFIX = "array:"  # row_logical_types' name for an Avro array: ``array:<element type>``


def _instant(micros: int) -> Any:
    """Debezium's (Micro|Nano)Timestamp: a zone-less column's wall clock, counted as if UTC.

    A value outside Python's years 1..9999 (BC, year 10000 and later) becomes PostgreSQL text.
    """
    if in_python_range(micros // MICROS_PER_DAY):
        return (_EPOCH + timedelta(microseconds=micros)).replace(tzinfo=None)
    return timestamp_text(micros)


def _timestamp(to_micros: Callable[[int], int]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if not isinstance(value, int):
            return value
        if value == _TS_INFINITY:
            return INFINITY
        if value == _TS_MINUS_INFINITY:
            return MINUS_INFINITY
        return _instant(to_micros(value))

    return convert


def _date(value: Any) -> Any:
    if not isinstance(value, int):
        return value
    special = _DATE_INFINITY.get(value)
    if special is not None:
        return special
    return _EPOCH_DATE + timedelta(days=value) if in_python_range(value) else date_text(value)


def _zoned(value: Any) -> Any:
    """``ZonedTimestamp`` is ISO-8601 with an offset (``Z`` for UTC): an aware datetime.

    ``infinity``/``-infinity`` arrive as those words; years outside 1..9999 as ``-0043-…`` or
    ``+12345-…`` (Java's extended ISO years), which become PostgreSQL text.
    """
    if not isinstance(value, str):
        return value
    if value in ("infinity", "-infinity"):
        return INFINITY if value == "infinity" else MINUS_INFINITY
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return iso_extended(value)


def _zoned_time(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return time.fromisoformat(value)
    except ValueError:
        return PgLiteral(value)  # ``24:00:00Z``: timetz accepts it, Python's time does not


def _time_of_day(micros: int) -> Any:
    """``time '24:00:00'`` arrives as a full day of microseconds; Python's ``time`` cannot hold it.

    MariaDB's ``TIME`` spans -838:59:59..838:59:59: such a value goes as text too, which an
    ``interval`` column takes and a ``time`` column refuses loudly (never wrapped into a day).
    """
    if 0 <= micros < MICROS_PER_DAY:
        return (_MIDNIGHT + timedelta(microseconds=micros)).time()
    return time_text(micros) if micros >= 0 else PgLiteral("-" + time_text(-micros))


def _decimal_bytes(value: Any, scale: int) -> Any:
    """Exact for any number of digits: built from the digits, never rounded by a context."""
    if isinstance(value, bytes | bytearray):
        sign, digits, _ = Decimal(int.from_bytes(value, "big", signed=True)).as_tuple()
        return Decimal((sign, digits, -scale))
    return value


def _variable_scale(value: Any) -> Any:
    """``VariableScaleDecimal`` (numeric without a declared scale): ``{scale, value}``."""
    if isinstance(value, Mapping):
        return _decimal_bytes(value["value"], int(value["scale"]))
    return value


def _ints(fn: Callable[[int], Any]) -> Callable[[Any], Any]:
    return lambda v: fn(v) if isinstance(v, int) else v


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "io.debezium.time.Date": _date,
    "org.apache.kafka.connect.data.Date": _date,
    "io.debezium.time.Timestamp": _timestamp(lambda ms: ms * 1000),
    "io.debezium.time.MicroTimestamp": _timestamp(lambda us: us),
    "io.debezium.time.NanoTimestamp": _timestamp(lambda ns: ns // 1000),
    "io.debezium.time.ZonedTimestamp": _zoned,
    "io.debezium.time.Time": _ints(lambda ms: _time_of_day(ms * 1000)),
    "io.debezium.time.MicroTime": _ints(_time_of_day),
    "io.debezium.time.NanoTime": _ints(lambda ns: _time_of_day(ns // 1000)),
    "io.debezium.time.ZonedTime": _zoned_time,
    "io.debezium.time.MicroDuration": _ints(lambda us: timedelta(microseconds=us)),
    "io.debezium.data.VariableScaleDecimal": _variable_scale,
    # io.debezium.data.Json / Uuid / Xml / Enum stay text: the sink casts text to jsonb/uuid
    # itself; Connect's Decimal is Avro's decimal logical type, already an exact Decimal from
    # fastavro (its context takes the schema's precision).
}


@cache  # one converter per element type, not one closure per value
def _array(element: str) -> Callable[[Any], Any]:
    """An Avro array → one PostgreSQL array literal, each element converted by its own type.

    The sink binds a batch as one array per column and ``unnest`` would flatten an array of
    arrays, so array columns travel as literals and are cast in the statement.
    """
    fn = CONVERTERS.get(element)

    def convert(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return array_literal(value if fn is None else [None if e is None else fn(e) for e in value])

    return convert


def converter_for(logical: str | None) -> Callable[[Any], Any] | None:
    """What ``convert_logical`` applies to a non-null value of ``logical`` (None: kept as it is)."""
    if logical is None:
        return None
    fn = CONVERTERS.get(logical)
    if fn is None and logical.startswith(ARRAY_PREFIX):
        fn = _array(logical.removeprefix(ARRAY_PREFIX))
    return fn


def convert_logical(logical: str | None, value: Any) -> Any:
    """``value`` as the Python type its Debezium semantic type means (unchanged if unknown)."""
    if value is None or logical is None:
        return value
    fn = converter_for(logical)
    return value if fn is None else fn(value)


def _named_types(schema: Any, into: dict[str, Any]) -> dict[str, Any]:
    """Every named type defined in ``schema`` by full name (Avro defines a name once and then
    refers to it by that name, e.g. an array of ``io.debezium.data.VariableScaleDecimal``)."""
    if isinstance(schema, list):
        for t in schema:
            _named_types(t, into)
    elif isinstance(schema, Mapping):
        name = schema.get("name")
        if isinstance(name, str) and schema.get("type") in ("record", "enum", "fixed"):
            namespace = schema.get("namespace")
            into.setdefault(f"{namespace}.{name}" if namespace and "." not in name else name, schema)
        for f in schema.get("fields") or ():
            _named_types(f.get("type"), into)
        _named_types(schema.get("items"), into)
    return into


def _logical_name(field_type: Any, named: Mapping[str, Any] | None = None) -> str | None:
    """``connect.name`` of a field type, looking through ``["null", T]`` and named references;
    ``array:<element's name>`` for an array."""
    named = named or {}
    if isinstance(field_type, list):
        types = [t for t in field_type if t != "null"]
        return _logical_name(types[0], named) if len(types) == 1 else None
    if isinstance(field_type, str):
        ref = named.get(field_type)
        return (
            _logical_name(ref, named)
            if ref is not None
            else (field_type if field_type in CONVERTERS else None)
        )
    if isinstance(field_type, Mapping):
        if field_type.get("type") == "array":
            return ARRAY_PREFIX + (_logical_name(field_type.get("items"), named) or "")
        name = field_type.get("connect.name")
        return name if isinstance(name, str) else None
    return None


def row_logical_types(envelope_schema: Any) -> dict[str, str]:
    """Field → semantic type of a Debezium envelope's row record (its ``after`` field)."""
    if not isinstance(envelope_schema, Mapping):
        return {}
    named = _named_types(envelope_schema, {})
    for f in envelope_schema.get("fields") or ():
        if f.get("name") not in ("after", "before"):
            continue
        row = f.get("type")
        row = next((t for t in row if isinstance(t, Mapping)), None) if isinstance(row, list) else row
        if not isinstance(row, Mapping):
            continue
        out: dict[str, str] = {}
        for col in row.get("fields") or ():
            name = _logical_name(col.get("type"), named)
            if name is not None and (name in CONVERTERS or name.startswith(ARRAY_PREFIX)):
                out[str(col["name"])] = name
        return out
    return {}


def _row_record(envelope_schema: Any) -> Mapping[str, Any] | None:
    if not isinstance(envelope_schema, Mapping):
        return None
    for f in envelope_schema.get("fields") or ():
        if f.get("name") not in ("after", "before"):
            continue
        row = f.get("type")
        row = next((t for t in row if isinstance(t, Mapping)), None) if isinstance(row, list) else row
        if isinstance(row, Mapping):
            return row
    return None


def row_fields(envelope_schema: Any) -> dict[str, Any]:
    """Field → Avro type (as parsed) of a Debezium envelope's row record, in schema order."""
    row = _row_record(envelope_schema)
    return {str(c["name"]): c.get("type") for c in (row.get("fields") or ())} if row else {}
