"""What a flush executes, independent of sync or async I/O.

``flush_steps`` yields ``Step`` s (query, params, whether rows come back) and receives each
step's rows; the sync and async sinks only drive it inside one transaction. ``SinkCore`` holds
the bookkeeping both share: routing events to mappings, skipping records the sink already
applied (offsets below the stored next offset), and counting what it ignores.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any, TypeVar

from psycopg import sql

from streams.cdc import ChangeEvent, Op
from streams.errors import SinkRowError, SinkRowErrors
from streams.sinks.applied import AppliedTracker, store_applied_params, store_applied_sql
from streams.sinks.batch import UNAVAILABLE_VALUE, Batch, Write, runs_by_mapping, to_write
from streams.sinks.batch import group as statement_groups
from streams.sinks.carry import MovedRows, carry_steps, inserted_errors
from streams.sinks.contract import FlushResult
from streams.sinks.ddl import mapping_ddl
from streams.sinks.drift import MissingColumns
from streams.sinks.ledger import ledger_params, ledger_sql, record_outcomes
from streams.sinks.lookup import lock_keys, lookup_sql
from streams.sinks.mapping import ConflictPolicy, TableMapping, TruncatePolicy
from streams.sinks.notices import Notice, notices_params, notices_sql
from streams.sinks.offsets import store_offsets_params, store_offsets_sql
from streams.sinks.probe import PlaceholderProbe, probe_steps
from streams.sinks.reconcile import batch_reconcile_steps, completed_snapshot
from streams.sinks.snapshot_points import Query, SnapshotTracker, place_steps, store_points_steps
from streams.sinks.statements import hard_delete_sql, stored_sql, upsert_sql
from streams.sinks.tables import Resolver, SinkTables
from streams.sinks.truncate import Truncate, truncate_params, truncate_sql

log = logging.getLogger(__name__)
T = TypeVar("T")
_key_of = attrgetter("key")
_first = itemgetter(0)


@dataclass
class Pending:
    """Table-level work buffered beside the batch's rows: truncates, ledger notices, and counts of
    events whose writer schema lacked a mapped column. Committed (or retried) with the batch."""

    truncates: list[Truncate] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    missing: dict[tuple[str, str], int] = field(default_factory=dict)
    applied: dict[tuple[str, int], dict[int, int]] = field(default_factory=dict)  # streams.sinks.applied

    def discard_partition(self, topic: str, partition: int) -> None:
        """A revoked partition's truncates are redone by its new owner (offsets not stored)."""
        self.applied.pop((topic, partition), None)
        self.truncates = [
            t for t in self.truncates if (t.event.topic, t.event.partition) != (topic, partition)
        ]


@dataclass(frozen=True)
class Step:
    query: Any  # psycopg.sql.Composed
    params: Sequence[Any]
    fetch: bool


def write_params(writes: Sequence[Write], hard_delete: bool) -> list[list[Any]]:
    """One array per column, in the order the statement's ``unnest`` expects."""
    # One comprehension per column: ``zip(*rows)`` transposes in C but makes an iterator per
    # row, and measured slower in the worker (py-spy: 4.4% of samples against 1.5%).
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
    writes: Sequence[Write],
    hard: bool,
    keep: frozenset[str],
    result: FlushResult,
    rejected: list[SinkRowError] | None = None,
) -> Generator[Step, list[Any], None]:
    """One statement group: write, then look up stored positions only for what was refused.

    A write that inserted a kept placeholder (``streams.sinks.carry``) is poison: appended to
    ``rejected`` (the caller raises them all once every group ran), or raised at once without it.
    """
    lww = writes[0].mapping.conflict_policy is ConflictPolicy.LAST_WRITER_WINS
    stored: dict[int, bytes | None] = {}
    if lww:  # the pre-write position is the only way to see that an older write won
        stored = {int(i) - 1: _bytes(p) for i, p in (yield stored_step(writes))}
    rows = yield write_steps(writes, hard, keep)
    applied = {int(row[0]) - 1 for row in rows}
    poison = inserted_errors(writes, [int(row[0]) - 1 for row in rows if len(row) > 1 and row[1]])
    if poison:
        if rejected is None:
            raise poison[0]
        rejected += poison
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
# The flush's locks in one statement and one global order (sorted keys), each exclusive or shared.
FLUSH_LOCK_SQL = sql.SQL(
    "SELECT CASE WHEN u.s THEN pg_advisory_xact_lock_shared(hashtextextended(u.k, 0))"
    " ELSE pg_advisory_xact_lock(hashtextextended(u.k, 0)) END"
    " FROM unnest(%s::text[], %s::bool[]) AS u(k, s)"
)


def partition_lock_keys(schema: str, partitions: Iterable[tuple[str, int]]) -> list[str]:
    """Sorted, so every flush takes its locks in one global order (no deadlock between two)."""
    return sorted(f"changefeed\x1f{schema}\x1f{topic}\x1f{partition}" for topic, partition in partitions)


def ddl_lock_keys(mappings: Iterable[TableMapping]) -> list[str]:
    """One key per table whose DDL a flush runs: two workers never create or alter it at once."""
    return [f"changefeed\x1f{m.sink_schema}\x1fddl\x1f{m.sink_table}" for m in mappings]


def flush_locks(
    batch: Batch,
    schema: str,
    pending: Iterable[TableMapping],
    targets: Iterable[TableMapping],
    exclusive: bool = False,
) -> list[tuple[str, bool]]:
    """The flush's advisory locks, sorted by key: (key, shared).

    Partition and DDL locks are exclusive. A lookup target's lock is exclusive when this flush
    writes the target itself (or truncates or reconciles: they touch rows of every key), and
    shared when it only writes tables the target looks up: two flushes of the looked-up table
    (two workers on its partitions) touch disjoint keys and so disjoint target rows, and may run
    at once; either against a flush of the target must not (``streams.sinks.lookup``).
    """
    written = {(w.mapping.sink_schema, w.mapping.sink_table) for w in batch.writes}
    locks = {k: False for k in partition_lock_keys(schema, batch.next_offsets) + ddl_lock_keys(pending)}
    for t in targets:
        shared = not exclusive and (t.sink_schema, t.sink_table) not in written
        for k in lock_keys(schema, [t.sink_table]):
            locks[k] = locks.get(k, shared) and shared
    return sorted(locks.items())


def lookup_targets(
    batch: Batch, tables: SinkTables | None, truncated: Iterable[TableMapping] = ()
) -> list[TableMapping]:
    """Targets whose copied columns this batch may change: written, or a table they look up was
    (written or truncated)."""
    if tables is None:
        return []
    out: dict[tuple[str, str], TableMapping] = {}
    for m in {w.mapping for w in batch.writes} | set(truncated):
        for t in [m, *tables.targets_of(m)]:
            current = tables.by_sink(t.sink_schema, t.sink_table)
            if current is not None and current.lookups:
                out[(t.sink_schema, t.sink_table)] = current
    return [out[k] for k in sorted(out)]


def first_keys(writes: Iterable[Write]) -> dict[tuple[str, str], set[Any]]:
    """The first key column's values of ``writes``, by sink schema and table, in one pass."""
    out: dict[tuple[str, str], set[Any]] = {}
    # Two versions of a mirrored table's mapping: one table.
    for m, found in runs_by_mapping(writes, _key_of):
        if m.key:  # always, for a validated mapping; never an IndexError from one that is not
            out.setdefault((m.sink_schema, m.sink_table), set()).update(map(_first, found))
    return out


def lookup_steps(
    batch: Batch,
    target: TableMapping,
    removed: Mapping[tuple[str, str], set[Any]] | None = None,
    keys: Mapping[tuple[str, str], set[Any]] | None = None,
) -> Generator[Step, list[Any], None]:
    """Refresh the copied columns of every target row the batch touched, on either side
    (``removed``: keys a truncate removed, by sink schema and table; ``keys``: ``first_keys`` of
    the batch's writes, computed once for all targets)."""
    if keys is None:
        keys = first_keys(batch.writes)
    key = target.key_columns[0]
    # The target's own rows by table name, in any sink schema (as the lookup has always matched).
    own = sorted(set().union(*(ks for (_, t), ks in keys.items() if t == target.sink_table)), key=str)
    for lk in target.lookups:
        on = target.column(lk.on)
        assert on is not None  # validate_mappings checked it
        looked = set(keys.get((target.sink_schema, lk.table), ()))
        looked |= (removed or {}).get((target.sink_schema, lk.table), set())
        if not own and not looked:
            continue
        query = lookup_sql(target.sink_schema, target.sink_table, key.name, key.type, on.type, lk)
        yield Step(query, [own, sorted(looked, key=str)], fetch=False)


def carried(batch: Batch, moved: MovedRows | None = None) -> Generator[Step, list[Any], list[Write]]:
    """The newest write per key, with placeholder columns carried over from a moved row's old
    key (``streams.sinks.carry``): read before any write, so the old key is not yet deleted."""
    plan = carry_steps(batch.newest(), batch.writes, moved)
    try:
        query, params = next(plan)
        while True:
            query, params = plan.send((yield Step(query, params, fetch=True)))
    except StopIteration as done:
        newest: list[Write] = done.value
        return newest


def truncate_steps(
    truncates: Sequence[Truncate], result: FlushResult, notices: list[Notice]
) -> Generator[Step, list[Any], dict[tuple[str, str], set[Any]]]:
    """Each truncate in position order, after the batch's writes; the keys each one removed."""
    removed: dict[tuple[str, str], set[Any]] = {}
    for t in sorted(truncates, key=lambda t: t.position):
        m = t.mapping
        rows = yield Step(truncate_sql(m), truncate_params(t), fetch=True)
        if len(m.key) == 1:  # lookups join on a single-column key
            removed.setdefault((m.sink_schema, m.sink_table), set()).update(r[0] for r in rows)
        result.truncates.append((f"{m.sink_schema}.{m.sink_table}", "applied", len(rows)))
        notices.append(t.notice(applied=True, rows=len(rows)))
    return removed


def flush_steps(
    batch: Batch,
    group: str,
    schema: str,
    tables: SinkTables | None = None,
    moved: MovedRows | None = None,
    extra: Pending | None = None,
    probe: PlaceholderProbe | None = None,
) -> Generator[Step, list[Any], FlushResult]:
    """Locks, new tables and columns, rows per statement group, truncates, lookups, the ledgers,
    the offsets — one transaction. Poison rows found row by row are raised together
    (``SinkRowErrors``), before any write while ``probe`` is armed (``streams.sinks.probe``)."""
    result = FlushResult(offsets=dict(batch.next_offsets))
    extra = extra or Pending()
    pending = list(tables.pending.values()) if tables is not None else []
    applying = [t for t in extra.truncates if t.mapping.truncate is TruncatePolicy.APPLY]
    targets = lookup_targets(batch, tables, [t.mapping for t in applying])
    locks = flush_locks(batch, schema, pending, targets, exclusive=bool(applying or batch.reconciles))
    if locks:
        yield Step(FLUSH_LOCK_SQL, [[k for k, _ in locks], [s for _, s in locks]], fetch=False)
    for m in pending:
        assert tables is not None
        for statement in mapping_ddl(m, tables):
            yield Step(statement, (), fetch=False)
    yield from _run(place_steps(batch, schema))  # snapshot points: the first transaction after one
    newest = yield from carried(batch, moved)
    if probe is not None and probe.armed():  # name them before any write (streams.sinks.probe)
        early = yield from _reads(probe_steps(newest))
        if early:
            probe.refused()
            raise SinkRowErrors(early)
    rejected: list[SinkRowError] = []
    for (m, hard, keep), writes in statement_groups(newest).items():
        result.written[m.sink_table] = result.written.get(m.sink_table, 0) + len(writes)
        yield from group_steps(writes, hard, keep, result, rejected)
    if rejected:  # every group ran: all of this attempt's poison at once (the caller rolls back)
        if probe is not None:
            probe.refused()
        raise SinkRowErrors(rejected)
    result.superseded = len(batch.writes) - len(newest)
    yield from _run(store_points_steps(batch, schema))
    result.reconciled = yield from _run(batch_reconcile_steps(batch, group, schema))
    notices = list(extra.notices)
    removed = yield from truncate_steps(applying, result, notices)
    for t in extra.truncates:
        if t.mapping.truncate is TruncatePolicy.IGNORE:
            result.truncates.append((f"{t.mapping.sink_schema}.{t.mapping.sink_table}", "ignored", 0))
            notices.append(t.notice(applied=False))
    touched = first_keys(batch.writes) if targets else {}
    for target in targets:
        yield from lookup_steps(batch, target, removed, touched)
    if result.conflicts:
        yield Step(ledger_sql(schema), ledger_params(result.conflicts), fetch=False)
    if notices:
        yield Step(notices_sql(schema), notices_params(notices), fetch=False)
    result.missing = dict(extra.missing)
    if batch.next_offsets:
        yield Step(store_offsets_sql(schema), store_offsets_params(group, batch.next_offsets), False)
    if extra.applied:  # the applied watermark, with the offsets (read-your-writes waits on it)
        yield Step(store_applied_sql(schema), store_applied_params(group, schema, extra.applied), True)
    return result


def _reads(plan: Generator[tuple[Any, list[Any]], list[Any], T]) -> Generator[Step, list[Any], T]:
    """Drive a plan of reads (query, params) that returns ``T``."""
    try:
        query, params = next(plan)
        while True:
            query, params = plan.send((yield Step(query, params, fetch=True)))
    except StopIteration as done:
        out: T = done.value
        return out


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
        resolver: Resolver | None = None,
    ) -> None:
        self.tables = SinkTables(mappings, resolver, control_schema)
        self.consumer_group = consumer_group
        self.control_schema = control_schema
        self.placeholder = placeholder
        self.batch = Batch()
        self.moved = MovedRows()  # old rows of primary-key moves split across two flushes
        self.pending = Pending()
        self.drift = MissingColumns()
        self.applied_offsets: dict[tuple[str, int], int] = {}
        self.counts = {"unmapped": 0, "replayed": 0, "tombstones": 0, "truncates": 0}
        self.snapshots = SnapshotTracker()
        self.applied = AppliedTracker()
        self.probe = PlaceholderProbe()  # placeholder inserts: checked first while they flow

    @property
    def mappings(self) -> dict[str, TableMapping]:
        """Every known mapping by source table (mirrored tables once resolved)."""
        return self.tables.current

    def add(
        self,
        partition: int,
        record: ChangeEvent,
        fields: Mapping[str, Any] | None = None,
        key_fields: Sequence[str] = (),
        old_key: Mapping[str, Any] | None = None,
        new_key: Mapping[str, Any] | None = None,
    ) -> None:
        """Buffer one record; raises ``SinkRowError`` (poison) if its key cannot be extracted.

        ``fields``: the writer schema's row fields (name → Avro type), for mirrored tables.
        ``old_key`` / ``new_key``: a primary-key change's other source key, on its create / on
        its delete (``streams.sinks.carry.old_key_of`` / ``new_key_of``).
        """
        topic = record.topic
        if record.offset < self.applied_offsets.get((topic, partition), 0):
            self.counts["replayed"] += 1  # already committed by an earlier flush
            return
        self.applied.observe(self.pending.applied, topic, partition, record.source)
        if record.tombstone:
            self.counts["tombstones"] += 1  # the delete event before it did the work
        elif record.op is Op.TRUNCATE:
            self._truncate(record)
        elif (mapping := self.tables.get(record.table_id, fields, key_fields)) is None:
            self.counts["unmapped"] += 1
        else:
            record = self.snapshots.observe(record, self.batch)  # snapshot points; T*'s position
            self.batch.writes.append(to_write(mapping, record, self.placeholder, old_key, new_key))
            missing = self.drift.check(mapping, record, fields)
            if missing:
                self._missing(mapping, record, missing)
            if (done := completed_snapshot(mapping, record)) is not None:
                self.batch.reconciles.append(done)
        self.batch.mark(topic, partition, record.offset)

    def mark(self, topic: str, partition: int, offset: int) -> None:
        """A record consumed without a row to write (an outbox message, a dead letter)."""
        self.batch.mark(topic, partition, offset)

    def _truncate(self, record: ChangeEvent) -> None:
        # No key and no row: only a table already known (declared, or seeded from the sink) can
        # be truncated; one never materialized has nothing to remove.
        mapping = self.tables.current.get(record.table_id)
        if mapping is None:
            self.counts["unmapped"] += 1
            return
        self.counts["truncates"] += 1
        if mapping.truncate is TruncatePolicy.IGNORE:
            log.warning(
                'ignored truncate of %s at %s (%s.%s says truncate = "ignore"): sink rows kept',
                record.table_id,
                record.origin,
                mapping.sink_schema,
                mapping.sink_table,
            )
        else:
            log.warning(
                "truncate of %s at %s: removing %s.%s rows older than %s (delete = %s)",
                record.table_id,
                record.origin,
                mapping.sink_schema,
                mapping.sink_table,
                record.position,
                mapping.delete_policy.value,
            )
        self.pending.truncates.append(Truncate.of(mapping, record))

    def _missing(self, mapping: TableMapping, record: ChangeEvent, missing: tuple[str, ...]) -> None:
        sink_table = f"{mapping.sink_schema}.{mapping.sink_table}"
        for source in missing:
            slot = (sink_table, source)
            self.pending.missing[slot] = self.pending.missing.get(slot, 0) + 1
        self.pending.notices += self.drift.notices(mapping, record, missing)

    def drop(self, topic: str, partition: int, offset: int) -> bool:
        """Remove a record being dead-lettered from the batch; its offset stays consumed."""
        return self.batch.drop(topic, partition, offset)

    def drop_all(self, origins: Iterable[tuple[str, int, int]]) -> int:
        """``drop`` for every record a flush attempt rejected, in one pass over the batch."""
        return self.batch.drop_all(origins)

    def revoke(self, topic: str, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.batch.discard_partition(topic, p)
            self.pending.discard_partition(topic, p)
            self.applied_offsets.pop((topic, p), None)
            self.applied.discard([(topic, p)])

    def committed(self, result: FlushResult) -> FlushResult:
        """After the transaction committed: remember offsets, start an empty batch, alert."""
        self.applied_offsets.update(result.offsets)
        self.moved.commit()
        self.batch = Batch()
        self.pending = Pending()
        self.tables.pending.clear()
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
