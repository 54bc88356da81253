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
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
_MIDNIGHT = datetime.combine(_EPOCH_DATE, time(), tzinfo=UTC)


def _instant(micros: int) -> datetime:
    """Debezium's (Micro|Nano)Timestamp: a zone-less column's wall clock, counted as if UTC."""
    return (_EPOCH + timedelta(microseconds=micros)).replace(tzinfo=None)


def _date(value: Any) -> Any:
    return _EPOCH_DATE + timedelta(days=value) if isinstance(value, int) else value


def _zoned(value: Any) -> Any:
    """``ZonedTimestamp`` is ISO-8601 with an offset (``Z`` for UTC): an aware datetime."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _zoned_time(value: Any) -> Any:
    return time.fromisoformat(value) if isinstance(value, str) else value


def _time_of_day(micros: int) -> time:
    return (_MIDNIGHT + timedelta(microseconds=micros)).time()


def _decimal_bytes(value: Any, scale: int) -> Any:
    if isinstance(value, bytes | bytearray):
        return Decimal(int.from_bytes(value, "big", signed=True)).scaleb(-scale)
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
    "io.debezium.time.Timestamp": _ints(lambda ms: _instant(ms * 1000)),
    "io.debezium.time.MicroTimestamp": _ints(_instant),
    "io.debezium.time.NanoTimestamp": _ints(lambda ns: _instant(ns // 1000)),
    "io.debezium.time.ZonedTimestamp": _zoned,
    "io.debezium.time.Time": _ints(lambda ms: _time_of_day(ms * 1000)),
    "io.debezium.time.MicroTime": _ints(_time_of_day),
    "io.debezium.time.NanoTime": _ints(lambda ns: _time_of_day(ns // 1000)),
    "io.debezium.time.ZonedTime": _zoned_time,
    "io.debezium.data.VariableScaleDecimal": _variable_scale,
    # io.debezium.data.Json / Uuid / Xml stay text: the sink casts text to jsonb/uuid itself;
    # Connect's Decimal is Avro's decimal logical type, already a Decimal from fastavro.
}


def convert_logical(logical: str | None, value: Any) -> Any:
    """``value`` as the Python type its Debezium semantic type means (unchanged if unknown)."""
    if value is None or logical is None:
        return value
    fn = CONVERTERS.get(logical)
    return value if fn is None else fn(value)


def _logical_name(field_type: Any) -> str | None:
    """``connect.name`` of a field type, looking through ``["null", T]``."""
    if isinstance(field_type, list):
        named = [t for t in field_type if t != "null"]
        return _logical_name(named[0]) if len(named) == 1 else None
    if isinstance(field_type, Mapping):
        name = field_type.get("connect.name")
        return name if isinstance(name, str) else None
    if isinstance(field_type, str) and field_type in CONVERTERS:
        # A named type's second use is a reference by its full name (two unconstrained numeric
        # columns share the VariableScaleDecimal record).
        return field_type
    return None


def row_logical_types(envelope_schema: Any) -> dict[str, str]:
    """Field → semantic type of a Debezium envelope's row record (its ``after`` field)."""
    if not isinstance(envelope_schema, Mapping):
        return {}
    for f in envelope_schema.get("fields") or ():
        if f.get("name") not in ("after", "before"):
            continue
        row = f.get("type")
        row = next((t for t in row if isinstance(t, Mapping)), None) if isinstance(row, list) else row
        if not isinstance(row, Mapping):
            continue
        out: dict[str, str] = {}
        for col in row.get("fields") or ():
            name = _logical_name(col.get("type"))
            if name is not None and name in CONVERTERS:
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
