"""Where each source's latest full snapshot happened, for the first transaction after it (T*).

PostgreSQL's first transaction streamed after a snapshot arrives as ``[null, LSN]`` and may have
written below the snapshot point S before committing after it (``streams.cdc.position``); only the
snapshot's own records carry S. The sink keeps the newest S per source (Debezium's ``source.name``,
the topic prefix): in memory for the records it has seen, and in ``changefeed_snapshot_points``
(written in the flush that holds snapshot records) for a worker that starts between a snapshot's
records and T* (a restart, a rebalance), which looks S up in its flush before writing T*.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from psycopg import sql

from streams.cdc import ChangeEvent, SourcePosition
from streams.cdc.position import after_snapshot, first_after_snapshot, is_snapshot, snapshot_floor
from streams.sinks.ddl import SNAPSHOT_POINTS_TABLE, ident

if TYPE_CHECKING:  # batch.py imports this module's users
    from streams.sinks.batch import Batch, Write

# (query, params, fetch): ``streams.sinks.flush`` turns these into its steps (it imports us).
Query = tuple[Any, Any, bool]  # params: a sequence or a mapping


class SnapshotTracker:
    """Each source's latest snapshot point seen by this sink (by ``source.name``)."""

    def __init__(self) -> None:
        self.points: dict[str, SourcePosition] = {}

    def observe(self, event: ChangeEvent, batch: Batch | None = None) -> ChangeEvent:
        """Note a snapshot record's point; give T* its ``(S, L, txId)`` position from the newest
        point this process saw, and mark it in ``batch`` for ``place_steps``: another worker may
        have applied a newer snapshot's records of this partition while it did not own it."""
        if event.position is None:
            return event
        source = event.source
        raw = source.get("snapshot")  # a streamed PostgreSQL event with a commit seen: nothing to do
        if (raw is None or raw is False or raw == "false") and source.get("connector") == "postgresql":
            sequence = source.get("sequence")
            if type(sequence) is str and sequence.startswith('["'):  # its last commit LSN: not T*
                return event
        name = str(event.source.get("name", ""))
        known = self.points.get(name)
        if is_snapshot(event.source):
            floor = snapshot_floor(event.position)
            if known is None or known.kind is not floor.kind or known < floor:
                self.points[name] = floor
                if batch is not None:
                    batch.snapshot_points[name] = floor.to_bytes()
            return event
        if not first_after_snapshot(event.source):
            return event
        if batch is not None:
            batch.unplaced.add((event.topic, event.partition, event.offset))
        if known is not None:
            return replace(event, position=after_snapshot(event.position, known))
        return event


def points_sql(schema: str) -> sql.Composed:
    return sql.SQL("SELECT source_name, point FROM {t} WHERE source_name = ANY(%s)").format(
        t=ident(schema, SNAPSHOT_POINTS_TABLE)
    )


def store_points_sql(schema: str) -> sql.Composed:
    """Only forward: a late flush of an older snapshot must not hide a newer point."""
    return sql.SQL(
        "INSERT INTO {t} AS p (source_name, point) SELECT * FROM unnest(%s::text[], %s::bytea[])"
        " ON CONFLICT (source_name) DO UPDATE SET point = EXCLUDED.point, updated_at = now()"
        " WHERE p.point < EXCLUDED.point"
    ).format(t=ident(schema, SNAPSHOT_POINTS_TABLE))


def place_steps(batch: Batch, schema: str) -> Generator[Query, list[Any], int]:
    """Before the rows: T* records take the newest snapshot point, the sink's or the one this
    process placed them by (recomputed from the event each time: a retried flush places them the
    same). Without any point, T* keeps ``(L, L, txId)``."""
    if not batch.unplaced:
        return 0
    names = sorted({str(w.event.source.get("name", "")) for w in _unplaced(batch)})
    rows = yield (points_sql(schema), [names], True)
    points = {str(n): SourcePosition.from_bytes(bytes(p)) for n, p in rows}
    placed = 0
    for i in _indexed_unplaced(batch):
        w = batch.writes[i]
        known = points.get(str(w.event.source.get("name", "")))
        if known is None or w.event.position is None:
            continue
        candidate = after_snapshot(w.event.position, known).to_bytes()
        if candidate > w.position:
            batch.writes[i] = replace(w, position=candidate)
            placed += 1
    return placed


def _indexed_unplaced(batch: Batch) -> list[int]:
    return [
        i
        for i, w in enumerate(batch.writes)
        if (w.event.topic, w.event.partition, w.event.offset) in batch.unplaced
    ]


def _unplaced(batch: Batch) -> list[Write]:
    return [w for w in batch.writes if (w.event.topic, w.event.partition, w.event.offset) in batch.unplaced]


def store_points_steps(batch: Batch, schema: str) -> Generator[Query, list[Any], int]:
    """After the rows: remember the snapshot points this batch saw (forward only)."""
    if not batch.snapshot_points:
        return 0
    names = sorted(batch.snapshot_points)
    yield (store_points_sql(schema), [names, [batch.snapshot_points[n] for n in names]], False)
    return len(names)
