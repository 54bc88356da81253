"""The position-guarded write statements, rendered once per (table, kind, kept columns).

Each batch statement takes one array per column (``UNNEST``: one round trip and one plan for the
whole batch; ``bench/sink_bench.py`` compares it with pipelined ``executemany``), bound in binary
(``%b``: psycopg's text array dumper escapes every element in Python, ~50x slower on 16 KiB text
and ~10x on short strings), and returns the
keys it actually wrote. The ``ON CONFLICT … WHERE`` guard is re-checked on the newest row
version, so concurrent writers (two workers, a zombie) cannot move a row backwards. Refused
writes are rare; only for them does ``stored_sql`` look up the stored position for the ledger
(last-writer-wins tables look it up before writing, to ledger the regressions they allow).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from psycopg import sql

from streams.sinks import pgvalues
from streams.sinks.ddl import DELETED_AT, POSITION, column_type, ident
from streams.sinks.mapping import Column, ConflictPolicy, DeletePolicy, TableMapping, is_array_type

IDX = "_cf_idx"
pgvalues.register()  # before any sink connection exists: connections copy the global adapters
INSERTED = "_cf_inserted"


def guard(m: TableMapping) -> sql.SQL:
    """``<`` keeps positions monotonic; last-writer-wins only skips exact duplicates."""
    return sql.SQL("<>" if m.conflict_policy is ConflictPolicy.LAST_WRITER_WINS else "<")


def _names(cols: Sequence[str], alias: str = "") -> sql.Composed:
    return sql.SQL(", ").join(ident(alias, c) if alias else ident(c) for c in cols)


def _keys_match(m: TableMapping, left: str, right: str) -> sql.Composed:
    return sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident(left, k), ident(right, k)) for k in m.key)


def _bound(c: Column) -> sql.Composable:
    """An array column travels as one array literal per row (``text[]``): ``unnest`` would
    flatten an array of arrays. The select list casts it back (``_incoming``)."""
    if is_array_type(c.type):
        return sql.SQL("%b::text[]")
    return sql.SQL("%b::{}[]").format(column_type(c))


def _incoming(m: TableMapping, cols: list[Column]) -> sql.Composed:
    """``i``: the batch as rows, from one bound array per column, numbered by ``_cf_idx``."""
    arrays: list[sql.Composable] = [_bound(c) for c in cols]
    arrays += [sql.SQL("%b::bytea[]"), sql.SQL("%b::timestamptz[]")]
    names = [c.name for c in cols] + [POSITION, DELETED_AT, IDX]
    if not any(is_array_type(c.type) for c in cols):
        return sql.SQL("i AS (SELECT * FROM unnest({}) WITH ORDINALITY AS i({}))").format(
            sql.SQL(", ").join(arrays), _names(names)
        )
    select = [
        sql.SQL("u.{n}::{t} AS {n}").format(n=ident(c.name), t=column_type(c))
        if is_array_type(c.type)
        else sql.SQL("u.{}").format(ident(c.name))
        for c in cols
    ]
    select += [sql.SQL("u.{}").format(ident(n)) for n in (POSITION, DELETED_AT, IDX)]
    return sql.SQL("i AS (SELECT {} FROM unnest({}) WITH ORDINALITY AS u({}))").format(
        sql.SQL(", ").join(select), sql.SQL(", ").join(arrays), _names(names)
    )


def _exists(m: TableMapping, table: str, op: str) -> sql.Composed:
    """A row of ``table`` for the incoming key at an equal or newer position blocks the write."""
    return sql.SQL(" WHERE NOT EXISTS (SELECT 1 FROM {t} x WHERE {on} AND x.{pos} {op} i.{pos})").format(
        t=ident(m.sink_schema, table), on=_keys_match(m, "x", "i"), pos=ident(POSITION), op=sql.SQL(op)
    )


def _insert(
    m: TableMapping,
    table: str,
    cols: list[str],
    updated: list[str],
    where: sql.Composable,
    inserted: bool = False,
) -> sql.Composed:
    """Guarded upsert from ``i``; answers the ordinals it actually wrote (and, with ``inserted``,
    whether each one inserted a new row: ``xmax = 0`` on the returned version).

    Ordinals, not keys, come back so that the caller never compares Python values with their
    database round trip (a uuid sent as text returns as a ``UUID``).
    """
    sets = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(ident(c), ident(c)) for c in [*updated, POSITION, DELETED_AT]
    )
    all_cols = [*cols, POSITION, DELETED_AT]
    return sql.SQL(
        ", w AS (INSERT INTO {table} AS t ({cols}) SELECT {icols} FROM i{where}"
        " ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE t.{pos} {op} EXCLUDED.{pos}"
        " RETURNING {rkey}{rins}) SELECT i.{idx}{ins} FROM w JOIN i ON {on}"
    ).format(
        rins=sql.SQL(", t.xmax = 0 AS {}").format(ident(INSERTED)) if inserted else sql.SQL(""),
        ins=sql.SQL(", w.{}").format(ident(INSERTED)) if inserted else sql.SQL(""),
        idx=ident(IDX),
        on=_keys_match(m, "w", "i"),
        table=ident(m.sink_schema, table),
        cols=_names(all_cols),
        icols=_names(all_cols, "i"),
        where=where,
        pos=ident(POSITION),
        op=guard(m),
        key=_names(m.key),
        sets=sets,
        rkey=_names(m.key, "t"),
    )


def _lww(m: TableMapping) -> bool:
    return m.conflict_policy is ConflictPolicy.LAST_WRITER_WINS


@cache  # one rendering per (mapping, kept columns): built once, reused every flush
def upsert_sql(m: TableMapping, keep: frozenset[str] = frozenset()) -> sql.Composed:
    """Upsert (and soft delete); arrays = key + value columns, position, deleted_at."""
    value_cols = [c.name for c in m.value_columns]
    parts = [_incoming(m, m.key_columns + m.value_columns)]
    where: sql.Composable = sql.SQL("")
    if m.delete_policy is DeletePolicy.HARD:
        # An older tombstone is superseded by this newer upsert (e.g. a key reused after a
        # delete); a newer tombstone means this upsert is stale and must not resurrect the row.
        parts.append(
            sql.SQL("untomb AS (DELETE FROM {d} d USING i WHERE {on} AND d.{pos} {op} i.{pos})").format(
                d=ident(m.sink_schema, m.tombstone_table),
                on=_keys_match(m, "d", "i"),
                pos=ident(POSITION),
                op=guard(m),
            )
        )
        if not _lww(m):
            where = _exists(m, m.tombstone_table, ">=")
    updated = [c for c in value_cols if c not in keep]
    # With kept columns, an insert would write NULL into them: the caller checks (sinks.carry).
    return _with(parts) + _insert(m, m.sink_table, [*m.key, *value_cols], updated, where, bool(keep))


@cache
def hard_delete_sql(m: TableMapping) -> sql.Composed:
    """Delete the row and keep its key and position as a tombstone; arrays = key, position, deleted_at."""
    gone = sql.SQL("gone AS (DELETE FROM {t} t USING i WHERE {on} AND t.{pos} {op} i.{pos})").format(
        t=ident(m.sink_schema, m.sink_table),
        on=_keys_match(m, "t", "i"),
        pos=ident(POSITION),
        op=guard(m),
    )
    where = sql.SQL("") if _lww(m) else _exists(m, m.sink_table, ">=")
    return _with([_incoming(m, m.key_columns), gone]) + _insert(m, m.tombstone_table, list(m.key), [], where)


@cache
def stored_sql(m: TableMapping) -> sql.Composed:
    """Newest stored position (row or tombstone) per key; arrays = key columns. For the ledger."""
    keys = m.key_columns
    arrays = sql.SQL(", ").join(sql.SQL("%b::{}[]").format(column_type(c)) for c in keys)
    newest: sql.Composable
    tomb: sql.Composable = sql.SQL("")
    if m.delete_policy is DeletePolicy.SOFT:
        newest = sql.SQL("t.{}").format(ident(POSITION))
    else:
        newest = sql.SQL("GREATEST(t.{p}, d.{p})").format(p=ident(POSITION))
        tomb = sql.SQL(" LEFT JOIN {d} d ON {on}").format(
            d=ident(m.sink_schema, m.tombstone_table), on=_keys_match(m, "d", "i")
        )
    return sql.SQL(
        "SELECT i.{idx}, {newest} FROM unnest({arrays}) WITH ORDINALITY AS i({names})"
        " LEFT JOIN {t} t ON {on}{tomb}"
    ).format(
        idx=ident(IDX),
        newest=newest,
        arrays=arrays,
        names=_names([*m.key, IDX]),
        t=ident(m.sink_schema, m.sink_table),
        on=_keys_match(m, "t", "i"),
        tomb=tomb,
    )


def _with(parts: list[sql.Composed]) -> sql.Composed:
    return sql.SQL("WITH ") + sql.SQL(", ").join(parts)


def upsert_values_sql(m: TableMapping) -> sql.Composed:
    """The one-row form for ``executemany`` (kept for the benchmark and as the fallback shape)."""
    cols = [*m.key, *(c.name for c in m.value_columns), POSITION, DELETED_AT]
    sets = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(ident(c), ident(c)) for c in cols if c not in m.key
    )
    return sql.SQL(
        "INSERT INTO {t} AS t ({cols}) VALUES ({vals}) ON CONFLICT ({key}) DO UPDATE SET {sets}"
        " WHERE t.{pos} {op} EXCLUDED.{pos}"
    ).format(
        t=ident(m.sink_schema, m.sink_table),
        cols=_names(cols),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        key=_names(m.key),
        sets=sets,
        pos=ident(POSITION),
        op=guard(m),
    )
