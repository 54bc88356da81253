"""The deletes a snapshot cannot express: rows a completed full snapshot did not contain.

A snapshot record says "this row existed at S"; a row deleted while capture was gone (a dropped
slot, an offset-reset window) produces no record at all. Once a table's full snapshot is complete
(Debezium marks its last record ``last_in_data_collection`` or ``last``), every row of the sink
table that neither the snapshot nor any change after it wrote still has a position older than S
(``streams.cdc.position``): those rows were deleted at the source. They are removed in the flush
transaction that contains the table's last snapshot record, per the table's delete policy (hard:
a tombstone at S, so a late older change cannot resurrect the row, while a snapshot row of the
same snapshot still can; soft: ``_cf_deleted_at``), and each is ledgered as ``snapshot_absent``.

Partitions. Debezium writes the snapshot of one table in order, but to a topic's partitions by
key; the last record lands in one partition while other workers may still be behind on theirs,
and deleting then would remove rows whose snapshot records are still in flight (they would come
back, but a reader would see them gone meanwhile). So the delete runs only when the consumer
group has consumed no other partition of that topic (the project's connectors create one-partition
topics); otherwise it is skipped with a warning and a ``snapshot_reconcile_skipped`` ledger row,
and the operator repartitions to one partition or reconciles by hand (README, Troubleshooting).

A snapshot record that is dead-lettered (poison) leaves its key's row older than S, so the row
is removed too and ledgered; replaying the dead letter (``changefeed dlq replay``) restores it
(its position S is above the tombstone's). A snapshot restricted by
``snapshot.select.statement.overrides`` must not be reconciled: rows it filters out look deleted.

Incremental snapshots are not reconciled: every record of one is marked just ``incremental``, so
the data never says when it is complete (the close watermark is only in the signal table), and
its records carry the streaming position of the moment each chunk was read, not one point. It
runs while streaming is live, so deletes made during it arrive as delete events anyway; a gap in
capture needs the full re-snapshot (offsets reset) that this module reconciles.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from streams.cdc import ChangeEvent
from streams.cdc.position import TABLE_DONE_MARKERS, snapshot_floor, snapshot_marker
from streams.sinks.ddl import CONFLICTS_TABLE, DELETED_AT, OFFSETS_TABLE, POSITION, ident
from streams.sinks.mapping import DeletePolicy, TableMapping
from streams.sinks.snapshot_points import Query

if TYPE_CHECKING:  # batch.py imports this module
    from streams.sinks.batch import Batch

log = logging.getLogger(__name__)
ABSENT = "snapshot_absent"
SKIPPED = "snapshot_reconcile_skipped"


@dataclass(frozen=True)
class Reconcile:
    """A table's snapshot completed at ``floor`` with the record at topic/partition/offset."""

    mapping: TableMapping
    floor: bytes
    topic: str
    partition: int
    offset: int


def completed_snapshot(mapping: TableMapping, event: ChangeEvent) -> Reconcile | None:
    """The reconcile request if ``event`` is the last full-snapshot record of its table."""
    if event.position is None or snapshot_marker(event.source) not in TABLE_DONE_MARKERS:
        return None
    floor = snapshot_floor(event.position).to_bytes()
    return Reconcile(mapping, floor, event.topic, event.partition, event.offset)


def other_partitions_sql(schema: str) -> sql.Composed:
    return sql.SQL(
        "SELECT count(*) FROM {t} WHERE consumer_group = %s AND topic = %s AND partition <> %s"
    ).format(t=ident(schema, OFFSETS_TABLE))


def _ledger_cols() -> sql.SQL:
    return sql.SQL(
        "(sink_table, source_table, row_key, reason, policy, stored_position, incoming_position,"
        " topic, partition, kafka_offset)"
    )


def reconcile_sql(m: TableMapping, control_schema: str) -> sql.Composed:
    """Remove (or soft-delete) rows older than the snapshot point; ledger each; count them.

    Params: floor, then sink table, source table, policy, topic, partition, offset (ledger).
    """
    table, pos = ident(m.sink_schema, m.sink_table), ident(POSITION)
    keys = sql.SQL(", ").join(ident(k) for k in m.key)
    row_key = sql.SQL("jsonb_build_object({})").format(
        sql.SQL(", ").join(sql.SQL("{}, g.{}").format(sql.Literal(k), ident(k)) for k in m.key)
    )
    if m.delete_policy is DeletePolicy.HARD:
        gone = sql.SQL(
            "gone AS (DELETE FROM {t} WHERE {pos} < %(floor)s RETURNING {keys}, {pos} AS old),"
            " tomb AS (INSERT INTO {d} AS d ({keys}, {pos}, {del}) SELECT {keys}, %(floor)s, now() FROM gone"
            " ON CONFLICT ({keys}) DO UPDATE SET {pos} = EXCLUDED.{pos}, {del} = EXCLUDED.{del}"
            " WHERE d.{pos} < EXCLUDED.{pos})"
        ).format(
            t=table,
            pos=pos,
            keys=keys,
            d=ident(m.sink_schema, m.tombstone_table),
            **{"del": ident(DELETED_AT)},
        )
    else:
        gone = sql.SQL(
            "gone AS (UPDATE {t} SET {del} = now(), {pos} = %(floor)s"
            " WHERE {pos} < %(floor)s AND {del} IS NULL RETURNING {keys}, NULL::bytea AS old)"
        ).format(t=table, pos=pos, keys=keys, **{"del": ident(DELETED_AT)})
    return sql.SQL(
        "WITH {gone}, led AS (INSERT INTO {ledger} {cols} SELECT %(sink)s, %(source)s, {row_key}, {reason},"
        " %(policy)s, g.old, %(floor)s, %(topic)s, %(partition)s, %(offset)s FROM gone g RETURNING 1)"
        " SELECT count(*) FROM led"
    ).format(
        gone=gone,
        ledger=ident(control_schema, CONFLICTS_TABLE),
        cols=_ledger_cols(),
        row_key=row_key,
        reason=sql.Literal(ABSENT),
    )


def skipped_sql(control_schema: str) -> sql.Composed:
    return sql.SQL(
        "INSERT INTO {ledger} {cols} VALUES (%(sink)s, %(source)s, '{{}}'::jsonb, {reason}, %(policy)s,"
        " NULL, %(floor)s, %(topic)s, %(partition)s, %(offset)s)"
    ).format(ledger=ident(control_schema, CONFLICTS_TABLE), cols=_ledger_cols(), reason=sql.Literal(SKIPPED))


def _params(r: Reconcile) -> dict[str, Any]:
    m = r.mapping
    return {
        "floor": r.floor,
        "sink": f"{m.sink_schema}.{m.sink_table}",
        "source": m.source_table,
        "policy": m.delete_policy.value,
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
    }


def reconcile_steps(
    requests: Sequence[Reconcile], group: str, control_schema: str, partitions_in_batch: set[tuple[str, int]]
) -> Generator[Query, list[Any], int]:
    """Per completed table snapshot: check the topic has one consumed partition, then delete."""
    removed = 0
    for r in _newest_per_table(requests):
        others = {p for t, p in partitions_in_batch if t == r.topic and p != r.partition}
        rows = yield (other_partitions_sql(control_schema), [group, r.topic, r.partition], True)
        if others or int(rows[0][0]):
            log.warning(
                "snapshot of %s complete at %s[%d]@%d, but the topic has several partitions: rows"
                " deleted at the source during the capture gap are NOT removed (see README)",
                r.mapping.source_table, r.topic, r.partition, r.offset,
            )  # fmt: skip
            yield (skipped_sql(control_schema), _params(r), False)
            continue
        rows = yield (reconcile_sql(r.mapping, control_schema), _params(r), True)
        count = int(rows[0][0])
        removed += count
        log.info(
            "snapshot of %s complete at %s[%d]@%d: %d row(s) the snapshot did not contain removed (%s)",
            r.mapping.source_table, r.topic, r.partition, r.offset, count, r.mapping.delete_policy.value,
        )  # fmt: skip
    return removed


def _newest_per_table(requests: Sequence[Reconcile]) -> list[Reconcile]:
    """Two snapshots completing in one batch: the later point covers the earlier one."""
    best: dict[tuple[str, str], Reconcile] = {}
    for r in requests:
        k = (r.mapping.sink_schema, r.mapping.sink_table)
        if k not in best or best[k].floor < r.floor:
            best[k] = r
    return list(best.values())


def batch_reconcile_steps(batch: Batch, group: str, schema: str) -> Generator[Query, list[Any], int]:
    """After the rows (the snapshot's own last rows are written first): reconcile, if any."""
    if not batch.reconciles:
        return 0
    removed: int = yield from reconcile_steps(batch.reconciles, group, schema, set(batch.next_offsets))
    return removed
