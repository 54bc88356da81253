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
timestamp     microseconds since the Unix epoch, UTC          zone/format independent instants;
              ``infinity``/``-infinity`` as those words      they have no epoch
date          ``YYYY-MM-DD`` (`` BC`` appended before year 1)  ``infinity`` as the word
boolean       ``1`` / ``0``                                   MariaDB booleans are TINYINT
json          PostgreSQL ``jsonb`` text                       key order and spacing normalized
text          the text itself (UTF-8)                         ``char(n)`` padding is stripped
bytes         lowercase hex
uuid          lowercase text
type[]        ``{…}`` of each element's canonical text        PostgreSQL only (both sides)
============  ==============================================  ===================================

JSON on MariaDB is stored verbatim (``JSON`` is ``LONGTEXT``) and MariaDB has no function that
produces ``jsonb``'s text form, so a table with a MariaDB source and a JSON column is compared
in Python instead (``needs_python``): each side's JSON text is parsed and re-serialized by
``canonical_json`` (sorted keys, no spaces, numbers by value) and hashed there; the other
columns' hashes still come from SQL (``query.hash_parts``).
Every template has one ``{col}`` slot for an already-quoted identifier; ``%`` is doubled because
queries always run with bound parameters.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


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
    ARRAY = "array"


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
    scale: int | None = None  # numeric(p,s): render with exactly s places (also as an element)
    element: Family | None = None  # ARRAY: the elements' family


def kind_of(sink_type: str) -> ColumnKind:
    """Map a sink column type (as written in a ``TableMapping``) to its comparison family."""
    lowered = sink_type.strip().lower()
    if lowered.endswith("[]"):
        element = kind_of(lowered.removesuffix("[]"))
        if element.family is Family.ARRAY:
            msg = f"cannot compare columns of type {sink_type!r}: arrays of arrays"
            raise ValueError(msg)
        return ColumnKind(Family.ARRAY, element.scale, element.family)
    match = _TYPE.match(lowered)
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
    Family.TIMESTAMP: (
        "CASE WHEN isfinite({col}) THEN (extract(epoch from {col}) * 1000000)::bigint::text"
        " ELSE ({col})::text END"
    ),
    Family.DATE: (
        "CASE WHEN NOT isfinite({col}) THEN ({col})::text"
        " WHEN {col} < DATE '0001-01-01' THEN to_char({col}, 'YYYY-MM-DD') || ' BC'"
        " ELSE to_char({col}, 'YYYY-MM-DD') END"
    ),
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


_ARRAY = (
    "CASE WHEN {col} IS NULL THEN NULL ELSE coalesce((SELECT array_agg(<element> ORDER BY _cf_o)"
    " FROM unnest({col}) WITH ORDINALITY AS _cf_u(_cf_e, _cf_o))::text, '{{}}') END"
)


def _array(kind: ColumnKind) -> str:
    """Each element rendered like a scalar of its family, in order; ``{}`` for an empty array."""
    assert kind.element is not None
    element = canonical_template(Dialect.POSTGRES, ColumnKind(kind.element, kind.scale)).replace(
        "{col}", "_cf_e"
    )
    return _ARRAY.replace("<element>", element)


def canonical_template(dialect: Dialect, kind: ColumnKind) -> str:
    """SQL rendering one column (slot ``{col}``) as canonical text; NULL stays NULL."""
    if kind.family is Family.NUMERIC:
        return _numeric(dialect, kind.scale)
    if kind.family is Family.ARRAY:
        if dialect is not Dialect.POSTGRES:
            msg = "MariaDB has no array columns to compare with a PostgreSQL array"
            raise ValueError(msg)
        return _array(kind)
    return (_PG if dialect is Dialect.POSTGRES else _MARIADB)[kind.family]


def needs_python(source: Dialect, kinds: tuple[ColumnKind, ...]) -> bool:
    """MariaDB JSON has no SQL form equal to ``jsonb``'s: such tables are hashed in Python."""
    return source is Dialect.MARIADB and any(k.family is Family.JSON for k in kinds)


_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def _json_text(value: Any) -> str:
    # Strings through the json module's own C escaper, what json.dumps(ensure_ascii=False) runs
    # for a str without its per-call set-up: a third of the time per row of a table hashed in Python.
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join([f"{_encode_string(k)}:{_json_text(v)}" for k, v in items]) + "}"
    if isinstance(value, list):
        return "[" + ",".join([_json_text(v) for v in value]) + "]"
    if isinstance(value, Decimal):
        return str(value.normalize())  # 1, 1.0 and 1e0 are one number (as in jsonb)
    return json.dumps(value, ensure_ascii=False)


def canonical_json(text: str | None) -> str | None:
    """JSON text by meaning: keys sorted, no whitespace, numbers exact and normalized."""
    if text is None:
        return None
    try:
        value = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return text  # not JSON: compare as stored
    return _json_text(value)


def part_hash(text: str | None) -> str:
    """One column's part of ``row_hash_template``: the md5 of its canonical text, NULL as ``~``."""
    return "~" if text is None else hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def combined_hash(parts: Iterable[str]) -> str:
    """``row_hash_template`` over the columns' parts (``part_hash``)."""
    return hashlib.md5("|".join(parts).encode(), usedforsecurity=False).hexdigest()


def hash_int(h: str) -> int:
    """``hash_int_template`` in Python: the first 60 bits of a row hash."""
    return int(h[:15], 16)


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
