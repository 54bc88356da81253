"""Retention for the sink's bookkeeping: tombstones and the conflict ledger.

Both grow with every hard delete and every refused write, forever, unless pruned. A tombstone
only matters while an upsert older than its delete can still arrive: a redelivery (bounded by
the lag), a zombie worker (bounded by the session timeout), or a replay of the topic. Past the
change topics' retention (Kafka's default is 7 days) no such upsert is left to replay; a replay
from further back re-applies the delete after the upsert, in partition order, so a pruned
tombstone can at most let a row reappear for the length of that replay.

Deletes run in small batches, each its own transaction, so a worker's flush never waits long
on a pruning lock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from streams.errors import ConfigError
from streams.sinks.ddl import CONFLICTS_TABLE, DELETED_AT, ident
from streams.sinks.mapping import DeletePolicy, TableMapping

BATCH_ROWS = 5_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")

Progress = Callable[[str, int], None]


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w``; anything else is a ``ConfigError`` saying so."""
    match = _DURATION.match(text.lower())
    if match is None:
        msg = f"not a duration: {text!r}; write a whole number and a unit, e.g. 7d, 12h, 30m, 90s, 2w"
        raise ConfigError(msg)
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def tombstone_tables(mappings: Sequence[TableMapping]) -> list[tuple[str, str]]:
    """(schema, table) of every tombstone table the mappings keep (hard deletes only)."""
    return [(m.sink_schema, m.tombstone_table) for m in mappings if m.delete_policy is DeletePolicy.HARD]


def prune_tombstones(
    conn: psycopg.Connection[Any],
    mappings: Sequence[TableMapping],
    older_than: timedelta,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Tombstones whose delete committed at the source before ``now() - older_than``, removed
    (or only counted with ``dry_run``); rows per ``schema.table``."""
    return {
        f"{schema}.{table}": _prune(conn, schema, table, DELETED_AT, older_than, dry_run, progress)
        for schema, table in tombstone_tables(mappings)
    }


def prune_conflicts(
    conn: psycopg.Connection[Any],
    schema: str,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> int:
    """Ledger entries recorded before ``now() - older_than``, removed (or counted)."""
    return _prune(conn, schema, CONFLICTS_TABLE, "at", older_than, dry_run, progress)


def _prune(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    column: str,
    older_than: timedelta,
    dry_run: bool,
    progress: Progress | None,
) -> int:
    t, c = ident(schema, table), sql.Identifier(column)
    if dry_run:
        count = sql.SQL("SELECT count(*) FROM {t} WHERE {c} < now() - %s").format(t=t, c=c)
        row = conn.execute(count, [older_than]).fetchone()
        conn.commit()
        return int(row[0]) if row else 0
    # The outer condition is re-checked on a row a concurrent flush updated meanwhile (a newer
    # delete of the same key), so a refreshed tombstone is never removed.
    delete = sql.SQL(
        "DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} WHERE {c} < now() - %(age)s"
        " LIMIT %(n)s)) AND {c} < now() - %(age)s"
    ).format(t=t, c=c)
    total = 0
    while True:
        with conn.transaction():
            removed = conn.execute(delete, {"age": older_than, "n": BATCH_ROWS}).rowcount
        total += removed
        if progress is not None and removed:
            progress(f"{schema}.{table}", total)
        if removed < BATCH_ROWS:
            return total
