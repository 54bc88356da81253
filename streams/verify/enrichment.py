"""Sink-side oracle for lookups: every copied column of a target row must equal the looked-up
table's row for the target's join column (NULL when there is none, or it is deleted).

Copied columns are in no source table, so the checksum comparison never sees them; this check
closes that gap inside the sink, one statement per lookup and round. A column copied from several
looked-up columns is those columns joined by one space, NULLs skipped — as the sink writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from streams.sinks.ddl import DELETED_AT
from streams.sinks.lookup import Lookup, expression
from streams.sinks.mapping import TableMapping
from streams.verify.compare import Divergence, DivergentKey, TableResult


def check_name(m: TableMapping, lk: Lookup) -> str:
    return f"{m.sink_table} ⋈ {lk.table}"


def lookup_sql(m: TableMapping, lk: Lookup) -> sql.Composed:
    """Params: limit. Row: (target rows, mismatches, up to ``limit`` mismatches as JSON)."""
    got = [
        sql.SQL("o.{} AS {}").format(sql.Identifier(n), sql.Identifier(f"got_{i}"))
        for i, (n, _) in enumerate(lk.columns)
    ]
    present = sql.SQL("l.{} IS NOT NULL").format(sql.Identifier(lk.key))
    if not lk.hard_deletes:
        present = sql.SQL("{} AND l.{} IS NULL").format(present, sql.Identifier(DELETED_AT))
    want = [
        sql.SQL("CASE WHEN {} THEN {} END AS {}").format(
            present, expression(src, "l"), sql.Identifier(f"want_{i}")
        )
        for i, (_, src) in enumerate(lk.columns)
    ]
    differs = sql.SQL(" OR ").join(
        sql.SQL("{} IS DISTINCT FROM {}").format(sql.Identifier(f"got_{i}"), sql.Identifier(f"want_{i}"))
        for i in range(len(lk.columns))
    )
    return sql.SQL(
        "WITH x AS (SELECT o.{tk} AS target_key, o.{on} AS looked_up_key, {got}, {want}"
        " FROM {target} o LEFT JOIN {looked} l ON l.{lk} = o.{on} WHERE o.{deleted} IS NULL),"
        " bad AS (SELECT * FROM x WHERE {differs})"
        " SELECT (SELECT count(*) FROM x), (SELECT count(*) FROM bad),"
        " (SELECT coalesce(jsonb_agg(to_jsonb(b) ORDER BY b.target_key), '[]'::jsonb) FROM"
        " (SELECT * FROM bad ORDER BY target_key LIMIT %s) b)"
    ).format(
        tk=sql.Identifier(m.key[0]),
        on=sql.Identifier(lk.on),
        got=sql.SQL(", ").join(got),
        want=sql.SQL(", ").join(want),
        target=sql.Identifier(m.sink_schema, m.sink_table),
        looked=sql.Identifier(m.sink_schema, lk.table),
        lk=sql.Identifier(lk.key),
        deleted=sql.Identifier(DELETED_AT),
        differs=differs,
    )


def lookups_of(mappings: Sequence[TableMapping]) -> list[tuple[TableMapping, Lookup]]:
    """Every (target, lookup) whose looked-up table is mapped too (else there is nothing to check)."""
    tables = {(m.sink_schema, m.sink_table) for m in mappings}
    return [(m, lk) for m in mappings for lk in m.lookups if (m.sink_schema, lk.table) in tables]


def _detail(m: TableMapping, lk: Lookup, row: dict[str, Any]) -> DivergentKey:
    found = "; ".join(
        f"{name}={row[f'got_{i}']!r} but {lk.table} has {row[f'want_{i}']!r}"
        for i, (name, _) in enumerate(lk.columns)
        if row[f"got_{i}"] != row[f"want_{i}"]
    )
    detail = f"{lk.on} {row['looked_up_key']}: {found}"
    return DivergentKey((str(row["target_key"]),), Divergence.ENRICHMENT, (detail,))


def materialized(sink: psycopg.Connection[Any], m: TableMapping, lk: Lookup) -> bool:
    """Whether the target carries the lookup's columns (a worker created them)."""
    row = sink.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " AND column_name = ANY(%s)",
        [m.sink_schema, m.sink_table, [n for n, _ in lk.columns]],
    ).fetchone()
    sink.rollback()
    return row is not None and int(row[0]) == len(lk.columns)


def check_lookup(sink: psycopg.Connection[Any], m: TableMapping, lk: Lookup, limit: int = 20) -> TableResult:
    """Never raises for divergence; database errors propagate to the caller (like compare)."""
    row = sink.execute(lookup_sql(m, lk), [limit]).fetchone()
    sink.rollback()
    assert row is not None  # an aggregate query always answers one row
    rows, bad, sample = int(row[0]), int(row[1]), row[2]
    result = TableResult(check_name(m, lk), source_rows=rows, sink_rows=rows, divergent=bad)
    result.keys = [_detail(m, lk, r) for r in sample]
    return result
