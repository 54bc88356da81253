"""How a column's value becomes canonical text, identically in PostgreSQL and MariaDB SQL.

Checksums are computed inside each database, so both must render a value the same way. The
rendering is chosen by the *sink* column type (the mapping's declared intent) and is explicit
per type family:

============  ==============================================  ===================================
family        canonical text                                  why
============  ==============================================  ===================================
integer       decimal digits                                  ``bigint`` vs ``BIGINT UNSIGNED``
numeric(p,s)  fixed ``s`` decimal places (``12.50``)          ``12.5`` = ``12.50``
numeric       trailing zeros trimmed (``12.5``)               scale is not part of the value
timestamp     microseconds since the Unix epoch, UTC          zone/format independent instants
date          ``YYYY-MM-DD``
boolean       ``1`` / ``0``                                   MariaDB booleans are TINYINT
json          PostgreSQL ``jsonb`` text                       key order and spacing normalized
text          the text itself (UTF-8)                         ``char(n)`` padding is stripped
bytes         lowercase hex
uuid          lowercase text
============  ==============================================  ===================================

JSON on MariaDB is stored verbatim (``JSON`` is ``LONGTEXT``) and MariaDB has no function that
produces ``jsonb``'s text form, so a MariaDB JSON column compares equal only when the writer
stored canonical ``jsonb`` text (the demo's load generator does, see ``streams.load.data``).
Every template has one ``{col}`` slot for an already-quoted identifier; ``%`` is doubled because
queries always run with bound parameters.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Dialect(enum.StrEnum):
    POSTGRES = "postgresql"
    MARIADB = "mariadb"


class Family(enum.StrEnum):
    INTEGER = "integer"
    NUMERIC = "numeric"
    TIMESTAMP = "timestamp"
    DATE = "date"
    BOOLEAN = "boolean"
    JSON = "json"
    TEXT = "text"
    BYTES = "bytes"
    UUID = "uuid"


_FAMILIES: dict[str, Family] = {
    **dict.fromkeys(("bigint", "integer", "smallint"), Family.INTEGER),
    "numeric": Family.NUMERIC,
    **dict.fromkeys(("timestamptz", "timestamp"), Family.TIMESTAMP),
    "date": Family.DATE,
    "boolean": Family.BOOLEAN,
    **dict.fromkeys(("json", "jsonb"), Family.JSON),
    **dict.fromkeys(("text", "varchar", "char", "inet", "time", "timetz", "interval"), Family.TEXT),
    "bytea": Family.BYTES,
    "uuid": Family.UUID,
}
_TYPE = re.compile(r"^(?P<base>[a-z ]+?)\s*(\((?P<p>\d+)(,\s*(?P<s>\d+))?\))?$")
_TRIM = "CASE WHEN {pos} > 0 THEN {rtrim} ELSE {x} END"


@dataclass(frozen=True)
class ColumnKind:
    family: Family
    scale: int | None = None  # numeric(p,s): render with exactly s places


def kind_of(sink_type: str) -> ColumnKind:
    """Map a sink column type (as written in a ``TableMapping``) to its comparison family."""
    match = _TYPE.match(sink_type.strip().lower())
    if match is None:
        msg = f"cannot compare columns of type {sink_type!r}"
        raise ValueError(msg)
    base = match.group("base").strip()
    if base in ("real", "double precision"):
        msg = f"{sink_type!r}: binary floats have engine-specific text; map them to numeric(p,s)"
        raise ValueError(msg)
    family = _FAMILIES.get(base)
    if family is None:
        msg = f"cannot compare columns of type {sink_type!r}"
        raise ValueError(msg)
    scale = match.group("s")
    if family is Family.NUMERIC and scale is None and match.group("p") is not None:
        scale = "0"  # numeric(p) means numeric(p, 0)
    return ColumnKind(family, int(scale) if scale is not None else None)


def _numeric(dialect: Dialect, scale: int | None) -> str:
    if dialect is Dialect.POSTGRES:
        if scale is not None:
            return f"round({{col}}::numeric, {scale})::text"
        x = "({col})::numeric::text"
        return _TRIM.format(pos=f"strpos({x}, '.')", rtrim=f"rtrim(rtrim({x}, '0'), '.')", x=x)
    if scale is not None:
        return f"CAST(CAST({{col}} AS DECIMAL(65, {scale})) AS CHAR)"
    x = "CAST({col} AS CHAR)"
    return _TRIM.format(
        pos=f"INSTR({x}, '.')", rtrim=f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {x}))", x=x
    )


_PG: dict[Family, str] = {
    Family.INTEGER: "({col})::bigint::text",
    Family.TIMESTAMP: "(extract(epoch from {col}) * 1000000)::bigint::text",
    Family.DATE: "to_char({col}, 'YYYY-MM-DD')",
    Family.BOOLEAN: "({col})::int::text",
    Family.JSON: "({col})::jsonb::text",
    Family.TEXT: "({col})::text",
    Family.BYTES: "encode({col}, 'hex')",
    Family.UUID: "lower(({col})::text)",
}
_MARIADB: dict[Family, str] = {
    Family.INTEGER: "CAST({col} AS CHAR)",
    # TIMESTAMPDIFF works before 1970 (UNIX_TIMESTAMP does not); the session runs in UTC.
    Family.TIMESTAMP: "CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {col}) AS CHAR)",
    Family.DATE: "DATE_FORMAT({col}, '%%Y-%%m-%%d')",
    Family.BOOLEAN: "CAST(({col} <> 0) AS CHAR)",
    Family.JSON: "CAST({col} AS CHAR)",
    Family.TEXT: "CAST({col} AS CHAR)",
    Family.BYTES: "LOWER(HEX({col}))",
    Family.UUID: "LOWER(CAST({col} AS CHAR))",
}


def canonical_template(dialect: Dialect, kind: ColumnKind) -> str:
    """SQL rendering one column (slot ``{col}``) as canonical text; NULL stays NULL."""
    if kind.family is Family.NUMERIC:
        return _numeric(dialect, kind.scale)
    return (_PG if dialect is Dialect.POSTGRES else _MARIADB)[kind.family]


def row_hash_template(dialect: Dialect, n: int) -> str:
    """md5 over per-column md5s (slots ``{0}``..): NULL (``~``) never equals '', no separator clash."""
    md5, coalesce, concat = (
        ("md5", "coalesce", "concat_ws") if dialect is Dialect.POSTGRES else ("MD5", "COALESCE", "CONCAT_WS")
    )
    parts = ", ".join(f"{coalesce}({md5}({{{i}}}), '~')" for i in range(n))
    return f"{md5}({concat}('|', {parts}))"


def hash_int_template(dialect: Dialect) -> str:
    """The first 60 bits of a row hash (slot ``{h}``) as an integer, summed into chunk digests."""
    if dialect is Dialect.POSTGRES:
        return "('x' || substr({h}, 1, 15))::bit(60)::bigint"
    return "CAST(CONV(SUBSTRING({h}, 1, 15), 16, 10) AS UNSIGNED)"
