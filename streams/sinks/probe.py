"""Placeholder rows with no stored row, found before the flush writes anything (while poison flows).

A write that still carries Debezium's unavailable-value placeholder (``streams.sinks.carry``) can
only update a stored row; an insert of it is refused after the upsert (``check_inserted``), which
rolls the whole flush back: the batch is written once for nothing, then again without the poison.
That is cheap when such rows are rare, and the common case — an update of a stored row — costs no
read. When they arrive in numbers (updates of rows the sink never saw: every batch holds some),
the wasted pass doubles the sink's writes. So once a flush has refused one, the next flushes first
read which of their placeholder writes would insert, and name those before any write (the retry
then writes the batch once); the check after the upsert stays, the authority.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from psycopg import sql

from streams.errors import SinkRowError
from streams.sinks.batch import Write
from streams.sinks.carry import unknown_error
from streams.sinks.ddl import POSITION, column_type, ident
from streams.sinks.mapping import ConflictPolicy, DeletePolicy, TableMapping

Read = tuple[sql.Composed, list[list[Any]]]
IDX = "_cf_idx"


@dataclass
class PlaceholderProbe:
    """Whether flushes read placeholder writes' keys first: for the next ``span`` flush attempts
    after one that refused such a write (the attempt after the one that named them finds none, so
    one clean attempt must not disarm it; a stream that stops carrying them stops paying)."""

    span: int = 20
    left: int = 0

    def armed(self) -> bool:
        """Whether this attempt reads first (counts it)."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True

    def refused(self) -> None:
        self.left = self.span


def suspects(newest: Sequence[Write]) -> dict[TableMapping, list[Write]]:
    """Writes that would insert NULL if their key had no row: placeholders left after carrying,
    not deletes that remove the row (by mapping, in batch order)."""
    out: dict[TableMapping, list[Write]] = {}
    for w in newest:
        if w.unavailable and not w.hard_delete:
            out.setdefault(w.mapping, []).append(w)
    return out


@cache
def would_insert_sql(m: TableMapping) -> sql.Composed:
    """Ordinals (arrays = key columns, positions) whose upsert would insert: no row for the key
    and, where hard deletes keep tombstones, no tombstone the upsert's guard would yield to
    (``statements.upsert_sql``). Never more than the upsert inserts: only those are refused."""
    names = [*m.key, POSITION, IDX]
    tomb: sql.Composable = sql.SQL("")
    if m.delete_policy is DeletePolicy.HARD and m.conflict_policy is not ConflictPolicy.LAST_WRITER_WINS:
        tomb = sql.SQL(" AND NOT EXISTS (SELECT 1 FROM {d} d WHERE {on} AND d.{pos} >= i.{pos})").format(
            d=ident(m.sink_schema, m.tombstone_table), on=_match(m, "d"), pos=ident(POSITION)
        )
    return sql.SQL(
        "SELECT i.{idx} FROM unnest({arrays}, %b::bytea[]) WITH ORDINALITY AS i({names})"
        " WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE {on}){tomb}"
    ).format(
        idx=ident(IDX),
        arrays=sql.SQL(", ").join(sql.SQL("%b::{}[]").format(column_type(c)) for c in m.key_columns),
        names=sql.SQL(", ").join(ident(n) for n in names),
        t=ident(m.sink_schema, m.sink_table),
        on=_match(m, "t"),
        tomb=tomb,
    )


def _match(m: TableMapping, alias: str) -> sql.Composed:
    return sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident(alias, k), ident("i", k)) for k in m.key)


def probe_steps(newest: Sequence[Write]) -> Generator[Read, list[Any], list[SinkRowError]]:
    """Yield one read per mapping (the suspects that would insert); return the error
    ``check_inserted`` would raise for each of those, in batch order per mapping."""
    rejected: list[SinkRowError] = []
    for m, writes in suspects(newest).items():
        keys = [[w.key[i] for w in writes] for i in range(len(m.key))]
        rows = yield would_insert_sql(m), [*keys, [w.position for w in writes]]
        inserting = {int(r[0]) - 1 for r in rows}
        rejected += [unknown_error(w) for n, w in enumerate(writes) if n in inserting]
    return rejected
