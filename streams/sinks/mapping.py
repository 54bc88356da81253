"""Declarative table mappings: which source table lands in which sink table, and how.

Validated once at startup so a bad mapping fails loudly before any event is consumed: names
that collide after renaming (or after PostgreSQL truncates them to 63 bytes), unknown column
types, missing keys and reserved ``_cf_`` names all raise ``ConfigError``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from streams.errors import ConfigError
from streams.sinks.lookup import Lookup

NAMEDATALEN = 63  # PostgreSQL silently truncates longer identifiers, which can make names collide
RESERVED_PREFIX = "_cf_"
TOMBSTONE_SUFFIX = "__cf_deleted"
CONTROL_PREFIX = "changefeed_"  # changefeed_offsets, changefeed_conflicts, changefeed_audit
_BASE_TYPES = frozenset(
    {
        *("text", "varchar", "char", "bigint", "integer", "smallint", "boolean", "numeric", "real"),
        *("double precision", "timestamptz", "timestamp", "date", "time", "timetz", "interval"),
        *("jsonb", "json", "bytea", "uuid", "inet"),
    }
)
# ``type[]``: a one-dimensional array of a base type. The batch binds one array per column and
# unnest() would flatten an array of arrays, so the statements bind array columns as literals.
_TYPE = re.compile(r"^(?P<base>[a-z ]+?)\s*(\(\d+(,\s*\d+)?\))?(?P<array>\s*\[\])?$")


class DeletePolicy(enum.StrEnum):
    HARD = "hard"  # row removed; its key and position kept in <table>__cf_deleted
    SOFT = "soft"  # row kept with _cf_deleted_at set


class TruncatePolicy(enum.StrEnum):
    APPLY = "apply"  # rows older than the truncate removed per the delete policy, ledgered
    IGNORE = "ignore"  # rows kept; a warning, a metric and a ledger entry say so


class ConflictPolicy(enum.StrEnum):
    DISCARD_STALE = "discard_stale"  # older than stored: skip, count, ledger
    LAST_WRITER_WINS = "last_writer_wins"  # apply whatever arrives last; ledger the regressions
    REJECT_AND_ALERT = "reject_and_alert"  # like discard_stale, plus a warning for an operator


@dataclass(frozen=True)
class Column:
    """One mapped column; ``convert`` turns the Debezium value into what the sink type takes."""

    source: str
    target: str = ""
    type: str = "text"
    convert: Callable[[Any], Any] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.target or self.source


@dataclass(frozen=True)
class TableMapping:
    source_table: str  # "schema.table" (PostgreSQL) or "database.table" (MariaDB/MySQL)
    sink_table: str
    columns: Sequence[Column]
    key: Sequence[str]  # sink column names
    sink_schema: str = "public"
    delete_policy: DeletePolicy = DeletePolicy.HARD
    conflict_policy: ConflictPolicy = ConflictPolicy.DISCARD_STALE
    lookups: Sequence[Lookup] = ()  # columns copied from other sink tables (streams.sinks.lookup)
    truncate: TruncatePolicy = TruncatePolicy.APPLY  # a source TRUNCATE (streams.sinks.truncate)

    def __post_init__(self) -> None:
        # Tuples keep the mapping hashable (it keys statement groups) and truly frozen.
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "key", tuple(self.key))
        object.__setattr__(self, "lookups", tuple(self.lookups))
        object.__setattr__(self, "delete_policy", DeletePolicy(self.delete_policy))
        object.__setattr__(self, "conflict_policy", ConflictPolicy(self.conflict_policy))
        object.__setattr__(self, "truncate", TruncatePolicy(self.truncate))

    def __hash__(self) -> int:
        """Computed once: mappings key caches hit per event, and a field-wise hash walks every column."""
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(getattr(self, f.name) for f in fields(self)))
            self.__dict__["_hash"] = cached
        return cached

    @property
    def tombstone_table(self) -> str:
        return self.sink_table + TOMBSTONE_SUFFIX

    # Cached: read for every event on the hot path; the mapping is immutable.
    @cached_property
    def key_columns(self) -> list[Column]:
        by_name = {c.name: c for c in self.columns}
        return [by_name[k] for k in self.key]

    @cached_property
    def value_columns(self) -> list[Column]:
        return [c for c in self.columns if c.name not in self.key]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def grow(current: TableMapping, proposed: TableMapping) -> TableMapping:
    """``current`` plus the columns ``proposed`` adds (never fewer: a column the source no longer
    sends keeps its stored values, it is not dropped). ``current`` itself when nothing is new."""
    known = {c.name for c in current.columns}
    added = [c for c in proposed.columns if c.name not in known]
    return replace(current, columns=(*current.columns, *added)) if added else current


def _identifier(name: str, what: str) -> str:
    if not name or "\x00" in name:
        msg = f"{what} {name!r} must be non-empty and contain no NUL character"
        raise ConfigError(msg)
    if len(name.encode()) > NAMEDATALEN:
        msg = f"{what} {name!r} is longer than {NAMEDATALEN} bytes; PostgreSQL would truncate it"
        raise ConfigError(msg)
    return name


def is_array_type(type_: str) -> bool:
    """``text[]``, ``numeric(10,2)[]``: a one-dimensional array column."""
    return type_.rstrip().endswith("[]")


def _check_type(type_: str, where: str) -> None:
    match = _TYPE.match(type_.strip().lower())
    if match is None or match.group("base") not in _BASE_TYPES:
        msg = (
            f"{where}: unsupported column type {type_!r}; use one of {sorted(_BASE_TYPES)}"
            " or a one-dimensional array of one (``text[]``)"
        )
        raise ConfigError(msg)


def _check_one(m: TableMapping) -> None:
    where = f"mapping {m.source_table!r} → {m.sink_table!r}"
    _identifier(m.sink_schema, f"{where}: schema")
    _identifier(m.sink_table, f"{where}: table")
    _identifier(m.tombstone_table, f"{where}: tombstone table")
    if not m.columns:
        msg = f"{where}: no columns"
        raise ConfigError(msg)
    seen: dict[str, str] = {}
    for col in m.columns:
        name = _identifier(col.name, f"{where}: column")
        if name.startswith(RESERVED_PREFIX):
            msg = f"{where}: column {name!r} uses the reserved prefix {RESERVED_PREFIX!r}"
            raise ConfigError(msg)
        if name in seen:
            msg = f"{where}: source columns {seen[name]!r} and {col.source!r} both map to {name!r}"
            raise ConfigError(msg)
        seen[name] = col.source
        _check_type(col.type, where)
    if not m.key or len(set(m.key)) != len(m.key) or not set(m.key) <= set(seen):
        msg = f"{where}: key {list(m.key)} must be distinct mapped columns of {sorted(seen)}"
        raise ConfigError(msg)
    array_keys = [c.name for c in m.key_columns if is_array_type(c.type)]
    if array_keys:  # keys are bound one element per row (the ledger's lookup, tombstones)
        msg = f"{where}: key columns {array_keys} are arrays; a key must be a scalar column"
        raise ConfigError(msg)
    for lk in m.lookups:
        if lk.on not in seen or len(m.key) != 1:
            msg = f"{where}: lookup of {lk.table!r} on {lk.on!r}: needs a mapped column and a one-column key"
            raise ConfigError(msg)
        for name, _ in lk.columns:
            _identifier(name, f"{where}: lookup column")
            if name in seen:
                msg = f"{where}: lookup column {name!r} collides with a mapped column"
                raise ConfigError(msg)
        for name in (lk.position_column, lk.key_column, f"{m.sink_table}{lk.index_name}"):
            _identifier(name, f"{where}: lookup bookkeeping name")


def validate_mappings(mappings: Iterable[TableMapping]) -> dict[str, TableMapping]:
    """Check every mapping and their names against each other; return them by source table."""
    by_source: dict[str, TableMapping] = {}
    sink_names: dict[tuple[str, str], str] = {}
    for m in mappings:
        _check_one(m)
        if m.source_table in by_source:
            msg = f"source table {m.source_table!r} is mapped twice"
            raise ConfigError(msg)
        by_source[m.source_table] = m
        for name in (m.sink_table, m.tombstone_table):
            owner = sink_names.setdefault((m.sink_schema, name), m.source_table)
            if owner != m.source_table:
                msg = (
                    f"sink table {m.sink_schema}.{name} would be written by {owner!r} and {m.source_table!r}"
                )
                raise ConfigError(msg)
        if m.sink_table.startswith(CONTROL_PREFIX):
            msg = f"sink table {m.sink_table!r} uses the prefix reserved for changefeed's own tables"
            raise ConfigError(msg)
    return by_source


def with_extra_columns(
    mappings: Iterable[TableMapping], extra: Mapping[str, Mapping[str, str]]
) -> list[TableMapping]:
    """``mappings`` with operator-added value columns: ``{source table: {source column: spec}}``.

    ``spec`` is ``"sink_name"`` or ``"sink_name:type"`` (type defaults to ``text``). This is how a
    column added to a source later (``ALTER TABLE … ADD COLUMN``) is mapped without a code change
    (``CHANGEFEED_PIPELINE__EXTRA_COLUMNS``); the sink adds the column at startup. Names are not
    checked here: ``validate_mappings`` rejects collisions at startup like any other mapping.
    """
    out = list(mappings)
    by_source = {m.source_table: i for i, m in enumerate(out)}
    for table, columns in extra.items():
        if table not in by_source:
            msg = f"extra columns for {table!r}, which no mapping reads (mapped: {sorted(by_source)})"
            raise ConfigError(msg)
        i = by_source[table]
        added = []
        for source, spec in columns.items():
            name, _, type_ = spec.partition(":")
            added.append(Column(source, name.strip(), type_.strip() or "text"))
        out[i] = replace(out[i], columns=(*out[i].columns, *added))
    return out
