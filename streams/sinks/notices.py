"""The source-notice ledger: what the sink did, or deliberately did not do, because of the source.

Three kinds, each written in the flush transaction that acted on it:

- ``column_missing`` — a mapped column the event's writer schema does not carry (dropped or
  renamed at the source): the sink keeps the stored values instead of writing NULL. One row per
  sink table and column (the first event that showed it); later events are counted by the
  ``changefeed_source_column_missing`` metric only.
- ``truncate_applied`` — a source TRUNCATE removed (or soft-deleted) ``rows`` sink rows whose
  position was older than the truncate's.
- ``truncate_ignored`` — the table says ``truncate = "ignore"``: nothing removed, on purpose.

Redeliveries insert nothing twice (``ddl.notices_ddl``'s unique indexes, ``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from streams.sinks.ddl import NOTICES_TABLE, ident

COLUMN_MISSING = "column_missing"
TRUNCATE_APPLIED = "truncate_applied"
TRUNCATE_IGNORED = "truncate_ignored"


@dataclass(frozen=True)
class Notice:
    sink_table: str  # schema.table
    source_table: str
    kind: str
    position: bytes
    topic: str
    partition: int
    offset: int
    source_column: str | None = None
    rows: int | None = None
    detail: str = ""


def notices_sql(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {t} (sink_table, source_table, kind, source_column, rows, position, topic,"
        " partition, kafka_offset, detail)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[],"
        " %s::bytea[], %s::text[], %s::integer[], %s::bigint[], %s::text[]) ON CONFLICT DO NOTHING"
    ).format(t=ident(schema, NOTICES_TABLE))


def notices_params(notices: Sequence[Notice]) -> list[list[Any]]:
    return [
        [n.sink_table for n in notices],
        [n.source_table for n in notices],
        [n.kind for n in notices],
        [n.source_column for n in notices],
        [n.rows for n in notices],
        [n.position for n in notices],
        [n.topic for n in notices],
        [n.partition for n in notices],
        [n.offset for n in notices],
        [n.detail for n in notices],
    ]


def load_notices(
    conn: psycopg.Connection[Any], schema: str = "public", kind: str | None = None
) -> list[dict[str, Any]]:
    """Newest first; empty when no worker created the ledger yet (``verify`` reads it too)."""
    exists = conn.execute(
        "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))", [schema, NOTICES_TABLE]
    ).fetchone()
    if exists is None or exists[0] is None:
        conn.rollback()
        return []
    query = sql.SQL(
        "SELECT id, sink_table, source_table, kind, source_column, rows, position, topic, partition,"
        " kafka_offset, detail, at FROM {t} WHERE %(kind)s::text IS NULL OR kind = %(kind)s ORDER BY id DESC"
    ).format(t=ident(schema, NOTICES_TABLE))
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(query, {"kind": kind}).fetchall()
    conn.rollback()
    return rows
