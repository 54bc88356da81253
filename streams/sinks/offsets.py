"""Consumed offsets stored in the sink, in the same transaction as the rows they produced.

On partition assignment a worker resumes from ``load_offsets``; Kafka's committed offsets are
only an optimization. Stored offsets only move forward (``GREATEST``) so a worker that lost its
partitions and flushes late (a zombie) cannot rewind the new owner; an operator rewinds with
``reset_offsets``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from streams.sinks.ddl import OFFSETS_TABLE, ident


def store_offsets_sql(schema: str) -> sql.Composed:
    """Params: group, topics[], partitions[], next_offsets[]."""
    return sql.SQL(
        "INSERT INTO {t} AS o (consumer_group, topic, partition, next_offset)"
        " SELECT %s, * FROM unnest(%s::text[], %s::integer[], %s::bigint[])"
        " ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
        " SET next_offset = GREATEST(o.next_offset, EXCLUDED.next_offset), updated_at = now()"
    ).format(t=ident(schema, OFFSETS_TABLE))


def store_offsets_params(group: str, offsets: Mapping[tuple[str, int], int]) -> list[object]:
    items = sorted(offsets.items())
    return [group, [t for (t, _), _ in items], [p for (_, p), _ in items], [o for _, o in items]]


def load_offsets_sql(schema: str) -> sql.Composed:
    return sql.SQL("SELECT partition, next_offset FROM {t} WHERE consumer_group = %s AND topic = %s").format(
        t=ident(schema, OFFSETS_TABLE)
    )


def load_offsets(
    conn: psycopg.Connection[Any], group: str, topic: str, schema: str = "public"
) -> dict[int, int]:
    """``{partition: next offset to consume}`` as last committed by the sink."""
    rows = conn.execute(load_offsets_sql(schema), [group, topic]).fetchall()
    return {int(p): int(o) for p, o in rows}


def reset_offsets(conn: psycopg.Connection[Any], group: str, topic: str, schema: str = "public") -> int:
    """Forget a topic's stored offsets (an operator's deliberate replay); returns rows removed."""
    with conn.transaction():
        cur = conn.execute(
            sql.SQL("DELETE FROM {t} WHERE consumer_group = %s AND topic = %s").format(
                t=ident(schema, OFFSETS_TABLE)
            ),
            [group, topic],
        )
        return cur.rowcount
