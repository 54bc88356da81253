"""PostgreSQL sink column types derived from Debezium's Avro field types (mirrored tables).

Placeholder of the type derivation; see the full table in the module that replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_BY_CONNECT_NAME = {
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
    "io.debezium.time.ZonedTime": "timetz",
    "io.debezium.time.MicroDuration": "interval",
    "io.debezium.time.Year": "integer",
    "io.debezium.data.Json": "jsonb",
    "io.debezium.data.Uuid": "uuid",
    "io.debezium.data.Xml": "text",
    "io.debezium.data.Enum": "text",
    "io.debezium.data.Bits": "bytea",
    "io.debezium.data.VariableScaleDecimal": "numeric",
}
_BY_AVRO = {
    "boolean": "boolean",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
    "string": "text",
    "bytes": "bytea",
}


def _named(field_type: Any) -> Any:
    if isinstance(field_type, list):
        named = [t for t in field_type if t != "null"]
        return named[0] if len(named) == 1 else field_type
    return field_type


def pg_type_for(field_type: Any) -> str:
    """The sink column type for one Avro field type as Debezium registers it."""
    t = _named(field_type)
    if isinstance(t, str):  # a primitive, or a reference to a named type defined earlier
        return _BY_AVRO.get(t) or _BY_CONNECT_NAME.get(t, "text")
    if not isinstance(t, Mapping):
        return "text"
    name = t.get("connect.name")
    if isinstance(name, str) and name in _BY_CONNECT_NAME:
        return _BY_CONNECT_NAME[name]
    if t.get("logicalType") == "decimal" or name == "org.apache.kafka.connect.data.Decimal":
        params = t.get("connect.parameters") or {}
        scale = int(t.get("scale", params.get("scale", 0)))
        precision = t.get("precision") or params.get("connect.decimal.precision")
        return f"numeric({int(precision)},{scale})" if precision else "numeric"
    base = t.get("type")
    if base == "array":
        return pg_type_for(t.get("items")) + "[]"
    if base in ("int", "long") and t.get("connect.type") == "int16":
        return "smallint"
    if isinstance(base, str):
        return _BY_AVRO.get(base, "text")
    return "text"
