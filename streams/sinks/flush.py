"""What a flush executes, independent of sync or async I/O.

``flush_steps`` yields ``Step`` s (query, params, whether rows come back) and receives each
step's rows; the sync and async sinks only drive it inside one transaction. ``SinkCore`` holds
the bookkeeping both share: routing events to mappings, skipping records the sink already
applied (offsets below the stored next offset), and counting what it ignores.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from streams.cdc import ChangeEvent, Op
from streams.sinks.batch import UNAVAILABLE_VALUE, Batch, Write, to_write
from streams.sinks.contract import FlushResult
from streams.sinks.ledger import ledger_params, ledger_sql, record_outcomes
from streams.sinks.mapping import ConflictPolicy, TableMapping, validate_mappings
from streams.sinks.offsets import store_offsets_params, store_offsets_sql
from streams.sinks.reconcile import batch_reconcile_steps, completed_snapshot
from streams.sinks.snapshot_points import Query, SnapshotTracker, place_steps, store_points_steps
from streams.sinks.statements import hard_delete_sql, stored_sql, upsert_sql

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    query: Any  # psycopg.sql.Composed
    params: Sequence[Any]
    fetch: bool


def write_params(writes: Sequence[Write], hard_delete: bool) -> list[list[Any]]:
    """One array per column, in the order the statement's ``unnest`` expects."""
    m = writes[0].mapping
    arrays = [[w.key[i] for w in writes] for i in range(len(m.key))]
    if not hard_delete:
        arrays += [[w.values[i] for w in writes] for i in range(len(m.value_columns))]
    arrays.append([w.position for w in writes])
    arrays.append([w.deleted_at for w in writes])
    return arrays


def write_steps(writes: Sequence[Write], hard_delete: bool, keep: frozenset[str]) -> Step:
    m = writes[0].mapping
    query = hard_delete_sql(m) if hard_delete else upsert_sql(m, keep)
    return Step(query, write_params(writes, hard_delete), fetch=True)


def stored_step(writes: Sequence[Write]) -> Step:
    m = writes[0].mapping
    return Step(stored_sql(m), [[w.key[i] for w in writes] for i in range(len(m.key))], fetch=True)


def group_steps(
    writes: Sequence[Write], hard: bool, keep: frozenset[str], result: FlushResult
) -> Generator[Step, list[Any], None]:
    """One statement group: write, then look up stored positions only for what was refused."""
    lww = writes[0].mapping.conflict_policy is ConflictPolicy.LAST_WRITER_WINS
    stored: dict[int, bytes | None] = {}
    if lww:  # the pre-write position is the only way to see that an older write won
        stored = {int(i) - 1: _bytes(p) for i, p in (yield stored_step(writes))}
    applied = {int(row[0]) - 1 for row in (yield write_steps(writes, hard, keep))}
    refused = [n for n in range(len(writes)) if n not in applied]
    if refused and not lww:
        rows = yield stored_step([writes[n] for n in refused])
        stored = {refused[int(i) - 1]: _bytes(p) for i, p in rows}
    record_outcomes(writes, applied, stored, result)


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


# One lock per source partition, held to the end of the flush transaction. A partition has one
# owner, except while a paused or partitioned-away worker (a zombie) still flushes what it read,
# or another group replays into the same tables. Two such flushes of one key must not overlap:
# under READ COMMITTED an older upsert's "no newer tombstone" check reads its statement's
# snapshot, so an upsert racing a newer delete could re-insert the deleted row (the K6 fault test
# caught one). Serialized, each flush's statements see the other's committed rows and tombstones.
PARTITION_LOCK_SQL = sql.SQL(
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) AS u(k)"
)


def partition_lock_keys(schema: str, partitions: Iterable[tuple[str, int]]) -> list[str]:
    """Sorted, so every flush takes its locks in one global order (no deadlock between two)."""
    return sorted(f"changefeed\x1f{schema}\x1f{topic}\x1f{partition}" for topic, partition in partitions)


def flush_steps(batch: Batch, group: str, schema: str) -> Generator[Step, list[Any], FlushResult]:
    """Partition locks, rows per statement group, the ledger, the offsets — one transaction."""
    result = FlushResult(offsets=dict(batch.next_offsets))
    if batch.next_offsets:
        yield Step(PARTITION_LOCK_SQL, [partition_lock_keys(schema, batch.next_offsets)], fetch=False)
    yield from _run(place_steps(batch, schema))
    newest = 0
    for (m, hard, keep), writes in batch.groups().items():
        newest += len(writes)
        result.written[m.sink_table] = result.written.get(m.sink_table, 0) + len(writes)
        yield from group_steps(writes, hard, keep, result)
    result.superseded = len(batch.writes) - newest
    yield from _run(store_points_steps(batch, schema))
    result.reconciled = yield from _run(batch_reconcile_steps(batch, group, schema))
    if result.conflicts:
        yield Step(ledger_sql(schema), ledger_params(result.conflicts), fetch=False)
    if batch.next_offsets:
        yield Step(store_offsets_sql(schema), store_offsets_params(group, batch.next_offsets), False)
    return result


def _run(plan: Generator[Query, list[Any], int]) -> Generator[Step, list[Any], int]:
    """Drive a snapshot plan (``snapshot_points``/``reconcile`` yield bare queries: they cannot
    import ``Step``)."""
    try:
        query, params, fetch = next(plan)
        while True:
            query, params, fetch = plan.send((yield Step(query, params, fetch)))
    except StopIteration as done:
        count: int = done.value
        return count


class SinkCore:
    """Buffering and bookkeeping shared by the sync and async PostgreSQL sinks."""

    def __init__(
        self,
        mappings: Iterable[TableMapping],
        consumer_group: str,
        *,
        control_schema: str = "public",
        placeholder: str = UNAVAILABLE_VALUE,
    ) -> None:
        self.mappings = validate_mappings(mappings)
        self.consumer_group = consumer_group
        self.control_schema = control_schema
        self.placeholder = placeholder
        self.batch = Batch()
        self.applied_offsets: dict[tuple[str, int], int] = {}
        self.counts = {"unmapped": 0, "replayed": 0, "tombstones": 0, "truncates": 0}
        self.snapshots = SnapshotTracker()

    def add(self, partition: int, record: ChangeEvent) -> None:
        """Buffer one record; raises ``SinkRowError`` (poison) if its key cannot be extracted."""
        topic = record.topic
        if record.offset < self.applied_offsets.get((topic, partition), 0):
            self.counts["replayed"] += 1  # already committed by an earlier flush
            return
        if record.tombstone:
            self.counts["tombstones"] += 1  # the delete event before it did the work
        elif record.op is Op.TRUNCATE:
            # Debezium skips truncates by default; materializing one would wipe a whole table.
            self.counts["truncates"] += 1
            log.warning("ignored truncate of %s at %s", record.table_id, record.origin)
        elif (mapping := self.mappings.get(record.table_id)) is None:
            self.counts["unmapped"] += 1
        else:
            record = self.snapshots.observe(record, self.batch)  # snapshot points; T*'s position
            self.batch.writes.append(to_write(mapping, record, self.placeholder))
            if (done := completed_snapshot(mapping, record)) is not None:
                self.batch.reconciles.append(done)
        self.batch.mark(topic, partition, record.offset)

    def drop(self, record: ChangeEvent) -> bool:
        """Remove a record being dead-lettered from the batch; its offset stays consumed."""
        return self.batch.drop(record.topic, record.partition, record.offset)

    def revoke(self, topic: str, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.batch.discard_partition(topic, p)
            self.applied_offsets.pop((topic, p), None)

    def committed(self, result: FlushResult) -> FlushResult:
        """After the transaction committed: remember offsets, start an empty batch, alert."""
        self.applied_offsets.update(result.offsets)
        self.batch = Batch()
        for c in result.conflicts:
            alert = c.policy == ConflictPolicy.REJECT_AND_ALERT.value
            log.log(
                logging.WARNING if alert else logging.INFO,
                "%s write to %s key %s at %s[%d]@%d (stored %s, incoming %s)",
                c.reason,
                c.sink_table,
                c.key,
                c.topic,
                c.partition,
                c.offset,
                c.stored_position.hex() if c.stored_position else None,
                c.incoming_position.hex(),
            )
        return result
