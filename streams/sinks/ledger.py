"""The conflict ledger: every write the version guard refused, with both positions.

A write statement returns the keys it wrote; for the others the stored position decides. Equal
positions are redeliveries (counted, not ledgered); an older
incoming position is ``stale``; a refusal with no newer stored position means a concurrent
writer got there first (``concurrent``); under last-writer-wins an applied write over a newer
row is ledgered as ``overwrote_newer`` so regressions stay visible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from streams.sinks.batch import Write
from streams.sinks.contract import Conflict, FlushResult
from streams.sinks.ddl import CONFLICTS_TABLE, ident


def record_outcomes(
    writes: Sequence[Write],
    applied: set[int],
    stored: Mapping[int, bytes | None],
    result: FlushResult,
) -> None:
    """Fold one statement's outcome into ``result``; indexes are 0-based positions in ``writes``."""
    for i, w in enumerate(writes):
        stored_pos = stored.get(i)
        if i in applied:
            result.applied += 1
            if stored_pos is not None and stored_pos > w.position:
                result.conflicts.append(_conflict(w, "overwrote_newer", stored_pos))
        elif stored_pos == w.position:
            result.duplicates += 1
        elif stored_pos is not None and stored_pos > w.position:
            result.conflicts.append(_conflict(w, "stale", stored_pos))
        else:
            result.conflicts.append(_conflict(w, "concurrent", stored_pos))


def _conflict(w: Write, reason: str, stored: bytes | None) -> Conflict:
    m = w.mapping
    return Conflict(
        sink_table=f"{m.sink_schema}.{m.sink_table}",
        source_table=m.source_table,
        key=dict(zip(m.key, w.key, strict=True)),
        reason=reason,
        policy=m.conflict_policy.value,
        stored_position=stored,
        incoming_position=w.position,
        topic=w.event.topic,
        partition=w.event.partition,
        offset=w.event.offset,
    )


def ledger_sql(schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {t} (sink_table, source_table, row_key, reason, policy, stored_position,"
        " incoming_position, topic, partition, kafka_offset)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::jsonb[], %s::text[], %s::text[],"
        " %s::bytea[], %s::bytea[], %s::text[], %s::integer[], %s::bigint[])"
    ).format(t=ident(schema, CONFLICTS_TABLE))


def ledger_params(conflicts: Sequence[Conflict]) -> list[list[Any]]:
    return [
        [c.sink_table for c in conflicts],
        [c.source_table for c in conflicts],
        # default=str: keys may be UUIDs, decimals or dates; the ledger is for people to read.
        [json.dumps(c.key, default=str, ensure_ascii=False) for c in conflicts],
        [c.reason for c in conflicts],
        [c.policy for c in conflicts],
        [c.stored_position for c in conflicts],
        [c.incoming_position for c in conflicts],
        [c.topic for c in conflicts],
        [c.partition for c in conflicts],
        [c.offset for c in conflicts],
    ]


def load_conflicts(
    conn: psycopg.Connection[Any], limit: int = 100, sink_table: str | None = None, schema: str = "public"
) -> list[dict[str, Any]]:
    """Newest ledger entries first, for ``changefeed conflicts``."""
    query = sql.SQL(
        "SELECT id, sink_table, source_table, row_key, reason, policy, stored_position,"
        " incoming_position, topic, partition, kafka_offset, at FROM {t}"
        " WHERE %(table)s::text IS NULL OR sink_table = %(table)s ORDER BY id DESC LIMIT %(limit)s"
    ).format(t=ident(schema, CONFLICTS_TABLE))
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(query, {"table": sink_table, "limit": limit}).fetchall()
