"""What to compare: one source table and its materialized table, derived from a ``TableMapping``.

Columns a mapping fills from elsewhere (an enrichment such as a customer's name on an order) are
not in the source table; they are listed as ``derived`` and left out of the checksum instead of
reported as divergent forever.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from streams.sinks.ddl import DELETED_AT
from streams.sinks.mapping import DeletePolicy, TableMapping
from streams.verify.normalize import ColumnKind, Dialect, Family, kind_of


@dataclass(frozen=True)
class Side:
    """One table on one database, with the columns to compare in comparison order."""

    dialect: Dialect
    schema: str  # PostgreSQL schema or MariaDB database
    table: str
    key: tuple[str, ...]
    values: tuple[str, ...]
    live_only: bool = False  # sink soft-delete tables: rows with _cf_deleted_at set are "absent"

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class TableSpec:
    name: str
    source: Side
    sink: Side
    key_kinds: tuple[ColumnKind, ...]
    value_kinds: tuple[ColumnKind, ...]
    value_names: tuple[str, ...]  # sink names, for reports
    derived: tuple[str, ...] = ()  # sink columns not present in the source table

    @property
    def chunkable(self) -> bool:
        """Key-range chunks need an integer leading key; anything else is one chunk."""
        return self.key_kinds[0].family is Family.INTEGER


def split_source(source_table: str) -> tuple[str, str]:
    container, _, table = source_table.rpartition(".")
    if not container or not table:
        msg = f"source table {source_table!r} must be schema.table or database.table"
        raise ValueError(msg)
    return container, table


def spec_for(
    m: TableMapping, source_dialect: Dialect, source_columns: Collection[str] | None = None
) -> TableSpec:
    """Pair the mapping's columns; ``source_columns`` (when known) marks derived columns."""
    container, table = split_source(m.source_table)

    def present(column: str) -> bool:
        return source_columns is None or column in source_columns

    keys = m.key_columns
    values = [c for c in m.value_columns if present(c.source)]
    derived = tuple(c.name for c in m.value_columns if not present(c.source))
    missing_keys = [c.source for c in keys if not present(c.source)]
    if missing_keys:
        msg = f"{m.sink_table}: key columns {missing_keys} are not in source table {m.source_table}"
        raise ValueError(msg)
    return TableSpec(
        name=m.sink_table,
        source=Side(
            source_dialect, container, table, tuple(c.source for c in keys), tuple(c.source for c in values)
        ),
        sink=Side(
            Dialect.POSTGRES,
            m.sink_schema,
            m.sink_table,
            tuple(c.name for c in keys),
            tuple(c.name for c in values),
            live_only=m.delete_policy is DeletePolicy.SOFT,
        ),
        key_kinds=tuple(kind_of(c.type) for c in keys),
        value_kinds=tuple(kind_of(c.type) for c in values),
        value_names=tuple(c.name for c in values),
        derived=derived,
    )


LIVE_COLUMN = DELETED_AT
