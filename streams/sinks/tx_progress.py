"""Applied counts of source transactions applied in parts (``streams.pipeline.transactions``).

A transaction over its source's bounds is applied in parts; the offsets stored with each part
move past its records, so after a restart they are never re-read. Its applied counts per data
collection are stored here in the same flush, and removed in the flush that applies its END:
a worker that takes over in the middle completes it from these counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from psycopg import sql

PROGRESS_TABLE = "changefeed_transaction_progress"


def progress_ddl(schema: str) -> list[sql.Composed]:
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (consumer_group text NOT NULL, source text NOT NULL,"
            " transaction_id text NOT NULL, applied jsonb NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (consumer_group, source, transaction_id))"
        ).format(sql.Identifier(schema, PROGRESS_TABLE))
    ]


def load_progress_sql(schema: str) -> sql.Composed:
    """Params: group, source. Rows: transaction id, applied counts (jsonb)."""
    return sql.SQL("SELECT transaction_id, applied FROM {} WHERE consumer_group = %s AND source = %s").format(
        sql.Identifier(schema, PROGRESS_TABLE)
    )


def progress_steps(
    schema: str,
    group: str,
    source: str,
    progress: Mapping[str, Mapping[str, int]],
    finished: Iterable[str],
) -> list[tuple[sql.Composed, list[Any]]]:
    """(query, params) to run in the flush: store the split transactions' counts, forget the
    finished ones (after: a transaction split and finished in one flush leaves no row)."""
    t = sql.Identifier(schema, PROGRESS_TABLE)
    out: list[tuple[sql.Composed, list[Any]]] = []
    done = sorted(set(finished))
    if progress:
        keys = sorted(progress)
        upsert = sql.SQL(
            "INSERT INTO {} (consumer_group, source, transaction_id, applied)"
            " SELECT %s, %s, * FROM unnest(%s::text[], %s::jsonb[])"
            " ON CONFLICT (consumer_group, source, transaction_id) DO UPDATE"
            " SET applied = EXCLUDED.applied, updated_at = now()"
        ).format(t)
        out.append((upsert, [group, source, keys, [json.dumps(progress[k]) for k in keys]]))
    if done:
        delete = sql.SQL(
            "DELETE FROM {} WHERE consumer_group = %s AND source = %s AND transaction_id = ANY(%s)"
        ).format(t)
        out.append((delete, [group, source, done]))
    return out


def parse_progress(rows: Iterable[tuple[Any, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, applied in rows:
        counts = json.loads(applied) if isinstance(applied, str | bytes) else applied
        out[str(key)] = {str(c): int(n) for c, n in dict(counts).items()}
    return out
