"""Lookup joins: columns of one materialized table copied from another, inside the sink.

Faust has no stream joins and its changelog tables can hang on recovery, so the join state is the
sink itself. A table (the *target*, e.g. ``order_view``) declares a lookup of another declared
sink table (e.g. ``customer_directory``) on one of its columns (``customer_id``): after a flush
has written either table, one statement in the same transaction copies the looked-up columns
(or NULLs, once the looked-up row is deleted) into every target row the flush touched on either
side.

Two guards, so neither side can regress: the target's own columns move only with the target's
position (the mapping's guard); copied columns only when the looked-up row's position is newer
than the one recorded in ``_cf_<lookup>_position`` — or when the target row now points at another
key (``_cf_<lookup>_key`` differs from the join column).

Two flushes of the two tables by different workers must not interleave: under READ COMMITTED the
target's flush reads the looked-up table before the other flush commits, and the other flush's
statement finds no target row yet, so the copy would stay NULL for good. Every flush that writes
the target or a table it looks up therefore takes one advisory lock per target (``lock_keys``)
before its first statement, in the same global order as the partition locks: exclusive when it
writes the target, shared when it only writes a looked-up table (``flush.flush_locks``), so two
workers flushing the looked-up table's partitions still run side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from psycopg import sql

POSITION, DELETED_AT = "_cf_position", "_cf_deleted_at"
TOMBSTONE_SUFFIX = "__cf_deleted"


@dataclass(frozen=True)
class Lookup:
    """One lookup of a target table; ``columns``: (target column, looked-up source columns)."""

    table: str  # the looked-up sink table (same sink schema as the target)
    key: str  # its single key column
    on: str  # the target's column holding that key
    columns: tuple[tuple[str, tuple[str, ...]], ...]
    label: str
    hard_deletes: bool = True  # the looked-up table keeps a tombstone table (else soft deletes)

    @property
    def position_column(self) -> str:
        return f"_cf_{self.label}_position"

    @property
    def key_column(self) -> str:
        return f"_cf_{self.label}_key"

    @property
    def index_name(self) -> str:
        return f"_cf_{self.label}_idx"


def expression(sources: Sequence[str], alias: str) -> sql.Composable:
    """One looked-up column, or several joined by one space with NULLs skipped."""
    if len(sources) == 1:
        return sql.Identifier(alias, sources[0])
    return sql.SQL("concat_ws(' ', {})").format(sql.SQL(", ").join(sql.Identifier(alias, s) for s in sources))


def lookup_ddl(
    schema: str, target: str, lookup: Lookup, column_types: dict[str, str], on_type: str
) -> list[sql.Composed]:
    """The copied and bookkeeping columns, and an index so the looked-up key's rows are found fast."""
    table = sql.Identifier(schema, target)
    columns = [(name, column_types.get(name, "text")) for name, _ in lookup.columns]
    columns += [(lookup.position_column, "bytea"), (lookup.key_column, on_type)]
    out = [
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
            table,
            sql.Identifier(name),
            sql.SQL(kind),  # checked against the sink's type allow-list
        )
        for name, kind in columns
    ]
    out.append(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(f"{target}{lookup.index_name}"[:63]), table, sql.Identifier(lookup.on)
        )
    )
    return out


def lookup_sql(
    schema: str, target: str, target_key: str, key_type: str, on_type: str, lookup: Lookup
) -> sql.Composed:
    """Params: target keys[], looked-up keys[] touched by the flush.

    ``t`` (the touched target rows) comes first so that only their looked-up rows are read (by
    key), never the whole looked-up table.
    """
    values = [expression(src, "l") for _, src in lookup.columns]
    if not lookup.hard_deletes:
        values = [
            sql.SQL("CASE WHEN l.{} IS NULL THEN {} END").format(sql.Identifier(DELETED_AT), v)
            for v in values
        ]
    aliases = [sql.Identifier(f"v{i}") for i in range(len(values))]
    selected = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(v, a) for v, a in zip(values, aliases, strict=True)
    )
    gone: sql.Composable = sql.SQL("")
    if lookup.hard_deletes:
        gone = sql.SQL(
            " UNION ALL SELECT d.{lk}, {nulls}, d.{pos} FROM {tomb} d WHERE d.{lk} IN (SELECT {on} FROM t)"
        ).format(
            lk=sql.Identifier(lookup.key),
            nulls=sql.SQL(", ").join(sql.SQL("NULL") for _ in values),
            pos=sql.Identifier(POSITION),
            tomb=sql.Identifier(schema, lookup.table + TOMBSTONE_SUFFIX),
            on=sql.Identifier(lookup.on),
        )
    sets = sql.SQL(", ").join(
        sql.SQL("{} = c.{}").format(sql.Identifier(name), a)
        for (name, _), a in zip(lookup.columns, aliases, strict=True)
    )
    return sql.SQL(
        "WITH t AS (SELECT {tk}, {on} FROM {target}"
        " WHERE {tk} = ANY(%s::{ktype}[]) OR {on} = ANY(%s::{otype}[])),"
        " c AS (SELECT DISTINCT ON (k) * FROM ("
        " SELECT l.{lk} AS k, {selected}, l.{pos} AS pos FROM {looked} l"
        " WHERE l.{lk} IN (SELECT {on} FROM t){gone}"
        ") s ORDER BY k, pos DESC)"
        " UPDATE {target} o SET {sets}, {pcol} = c.pos, {kcol} = c.k"
        " FROM t JOIN c ON c.k = t.{on} WHERE o.{tk} = t.{tk}"
        " AND (o.{pcol} IS NULL OR o.{kcol} IS DISTINCT FROM o.{on} OR o.{pcol} < c.pos)"
    ).format(
        tk=sql.Identifier(target_key),
        on=sql.Identifier(lookup.on),
        target=sql.Identifier(schema, target),
        ktype=sql.SQL(key_type),
        otype=sql.SQL(on_type),
        lk=sql.Identifier(lookup.key),
        selected=selected,
        pos=sql.Identifier(POSITION),
        looked=sql.Identifier(schema, lookup.table),
        gone=gone,
        sets=sets,
        pcol=sql.Identifier(lookup.position_column),
        kcol=sql.Identifier(lookup.key_column),
    )


def lock_keys(schema: str, targets: Iterable[str]) -> list[str]:
    """Advisory-lock keys serializing the flushes that write a target or a table it looks up."""
    return [f"changefeed\x1f{schema}\x1flookup\x1f{t}" for t in targets]
