"""The PostgreSQL sink column type for a Debezium Avro field type (for auto-created columns).

Debezium marks what a column means in the Avro schema: ``connect.name`` for its semantic types
(``io.debezium.time.Date`` on an ``int``), ``connect.type`` for the integer widths Avro lacks
(``int16``), ``connect.parameters`` for a decimal's precision and scale. Every type returned
here passes the mappings' allow-list, and ``streams.cdc.logical`` converts the values Debezium
sends for it into what that column takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PRIMITIVES = {
    "int": "integer",
    "long": "bigint",
    "boolean": "boolean",
    "string": "text",
    "bytes": "bytea",
    "float": "real",
    "double": "double precision",
}
_CONNECT_TYPES = {"int8": "smallint", "int16": "smallint", "int32": "integer", "int64": "bigint"}
_SEMANTIC = {
    "io.debezium.data.VariableScaleDecimal": "numeric",
    "io.debezium.time.Date": "date",
    "org.apache.kafka.connect.data.Date": "date",
    "io.debezium.time.Timestamp": "timestamp",
    "io.debezium.time.MicroTimestamp": "timestamp",
    "io.debezium.time.NanoTimestamp": "timestamp",
    "org.apache.kafka.connect.data.Timestamp": "timestamp",
    "io.debezium.time.ZonedTimestamp": "timestamptz",
    "io.debezium.time.Time": "time",
    "io.debezium.time.MicroTime": "time",
    "io.debezium.time.NanoTime": "time",
    "org.apache.kafka.connect.data.Time": "time",
    "io.debezium.time.ZonedTime": "timetz",
    "io.debezium.time.MicroDuration": "interval",
    "io.debezium.data.Json": "jsonb",
    "io.debezium.data.Uuid": "uuid",
    "io.debezium.data.Xml": "text",
    "io.debezium.data.Enum": "text",
    "io.debezium.data.EnumSet": "text",
    "io.debezium.data.Bits": "bytea",
    "io.debezium.time.Year": "integer",
}
_DECIMAL = "org.apache.kafka.connect.data.Decimal"


def _decimal(t: Mapping[str, Any]) -> str:
    params = t.get("connect.parameters") or {}
    precision = params.get("connect.decimal.precision", t.get("precision"))
    scale = params.get("scale", t.get("scale"))
    if precision is None:
        return "numeric"
    return f"numeric({int(precision)},{int(scale or 0)})"


def pg_type_for(avro_field_type: Any) -> str:
    """``smallint``, ``numeric(30,10)``, ``timestamptz``, ``text[]``…; ``ValueError`` if none fits.

    Looks through ``["null", T]``. A named reference (an array of an already defined
    ``io.debezium.data.VariableScaleDecimal``) is resolved by its name, which for Debezium's
    semantic types is also its ``connect.name``.
    """
    t = avro_field_type
    if isinstance(t, list):
        types = [x for x in t if x != "null"]
        if len(types) != 1:
            msg = f"a union of {types} has no single column type"
            raise ValueError(msg)
        return pg_type_for(types[0])
    if isinstance(t, str):
        found = _PRIMITIVES.get(t) or _SEMANTIC.get(t)
        if found is None:
            msg = f"no PostgreSQL column type for Avro type {t!r}"
            raise ValueError(msg)
        return found
    if not isinstance(t, Mapping):
        msg = f"not an Avro type: {t!r}"
        raise ValueError(msg)
    name = t.get("connect.name")
    if name == _DECIMAL or (name is None and t.get("logicalType") == "decimal"):
        return _decimal(t)
    if isinstance(name, str) and name in _SEMANTIC:
        return _SEMANTIC[name]
    kind = t.get("type")
    if kind == "array":
        element = pg_type_for(t.get("items"))
        if element.endswith("[]"):
            msg = "arrays of arrays are not supported (PostgreSQL arrays are not nested)"
            raise ValueError(msg)
        return element + "[]"
    connect_type = t.get("connect.type")
    if isinstance(connect_type, str) and connect_type in _CONNECT_TYPES:
        return _CONNECT_TYPES[connect_type]
    if isinstance(kind, str) and kind in _PRIMITIVES and name is None:
        return _PRIMITIVES[kind]
    msg = f"no PostgreSQL column type for Debezium type {name or kind!r}"
    raise ValueError(msg)
