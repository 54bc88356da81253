"""Buffering and de-duplication of change events between two flushes (pure, no I/O).

One ``ON CONFLICT`` statement must not touch the same key twice, and only the newest state of
a key matters, so each flush keeps, per sink table and key, the event with the highest position.
All events stay buffered until the flush so that ``drop`` (a poison record being dead-lettered)
can fall back to the next-newest event of that key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from streams.cdc import ChangeEvent, Op
from streams.cdc.logical import convert_logical
from streams.errors import SinkRowError
from streams.sinks.mapping import Column, DeletePolicy, TableMapping
from streams.sinks.reconcile import Reconcile

UNAVAILABLE_VALUE = "__debezium_unavailable_value"  # Debezium's unavailable.value.placeholder


@dataclass(frozen=True)
class Write:
    """One event reduced to what the sink statement needs."""

    mapping: TableMapping
    event: ChangeEvent
    key: tuple[Any, ...]
    values: tuple[Any, ...]  # aligned with mapping.value_columns; None where kept
    keep: frozenset[str]  # value columns whose stored value must stay (TOAST / soft delete)
    deleted_at: datetime | None
    position: bytes

    @property
    def hard_delete(self) -> bool:
        return self.event.op is Op.DELETE and self.mapping.delete_policy is DeletePolicy.HARD


def is_unavailable(value: Any, placeholder: str = UNAVAILABLE_VALUE) -> bool:
    """Debezium sends the placeholder as text, as its UTF-8 bytes, or as a one-element array."""
    if isinstance(value, str):
        return value == placeholder
    if isinstance(value, bytes | bytearray):
        return value == placeholder.encode()
    if isinstance(value, list) and len(value) == 1:
        return is_unavailable(value[0], placeholder)
    return False


def _value(col: Column, row: Mapping[str, Any], types: Mapping[str, str]) -> Any:
    """A column's own ``convert`` wins; otherwise the Debezium semantic type decides."""
    raw = row.get(col.source)
    if raw is None:
        return None
    if col.convert is not None:
        return col.convert(raw)
    return convert_logical(types.get(col.source), raw)


def _merged_row(event: ChangeEvent) -> dict[str, Any]:
    row: dict[str, Any] = dict(event.key) if isinstance(event.key, Mapping) else {}
    row.update(event.row or {})
    return row


def _key(mapping: TableMapping, event: ChangeEvent, row: Mapping[str, Any]) -> tuple[Any, ...]:
    key = tuple(_value(c, row, event.logical_types) for c in mapping.key_columns)
    if any(k is None for k in key):
        msg = f"key columns {list(mapping.key)} incomplete for {mapping.source_table}"
        raise SinkRowError(msg, event.origin, key)
    return key


def key_of(mapping: TableMapping, event: ChangeEvent) -> tuple[Any, ...]:
    """The sink key of ``event`` alone (no value conversion); ``SinkRowError`` if incomplete."""
    return _key(mapping, event, _merged_row(event))


def to_write(mapping: TableMapping, event: ChangeEvent, placeholder: str = UNAVAILABLE_VALUE) -> Write:
    """Extract key and values; a record whose key is incomplete is poison (``SinkRowError``)."""
    assert event.position is not None, "tombstones carry no row"
    row = _merged_row(event)
    types = event.logical_types
    key = _key(mapping, event, row)
    deleting = event.op is Op.DELETE
    keep: set[str] = set()
    values: list[Any] = []
    for col in mapping.value_columns:
        raw = row.get(col.source)
        if deleting or is_unavailable(raw, placeholder):
            keep.add(col.name)
            values.append(None)
        else:
            values.append(_value(col, row, types))
    return Write(
        mapping,
        event,
        key,
        tuple(values),
        frozenset(keep),
        (event.source_ts or event.ts) if deleting else None,
        event.position.to_bytes(),
    )


def merge(older: Write, newer: Write) -> Write:
    """Fold two writes of one key: columns the newer one keeps take the older one's value.

    Without this, an insert and a later update with an unchanged-TOAST placeholder in the same
    batch would lose the large value; a soft delete after an insert keeps the inserted values.
    """
    if newer.hard_delete or older.hard_delete:
        return newer
    cols = newer.mapping.value_columns
    take = {c.name for c in cols} & (newer.keep - older.keep)
    if not take:
        return newer
    values = tuple(older.values[i] if c.name in take else newer.values[i] for i, c in enumerate(cols))
    return replace(newer, values=values, keep=newer.keep - take)


@dataclass
class Batch:
    """Everything added since the last successful flush, plus the offsets it covers."""

    writes: list[Write] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    # Tables whose full snapshot completed in this batch (streams.sinks.reconcile); snapshot
    # points seen, by source name, and first-after-snapshot records (streams.sinks.snapshot_points).
    reconciles: list[Reconcile] = field(default_factory=list)
    snapshot_points: dict[str, bytes] = field(default_factory=dict)
    unplaced: set[tuple[str, int, int]] = field(default_factory=set)

    def mark(self, topic: str, partition: int, offset: int) -> None:
        """Record that ``offset`` was consumed, whether or not it produced a write."""
        tp = (topic, partition)
        self.next_offsets[tp] = max(self.next_offsets.get(tp, 0), offset + 1)

    def drop(self, topic: str, partition: int, offset: int) -> bool:
        """Remove one record's write (it is being dead-lettered); its offset stays consumed."""
        before = len(self.writes)
        self.writes = [
            w
            for w in self.writes
            if (w.event.topic, w.event.partition, w.event.offset) != (topic, partition, offset)
        ]
        return len(self.writes) != before

    def discard_partition(self, topic: str, partition: int) -> None:
        """Forget a revoked partition's uncommitted work; its new owner will redo it."""
        self.writes = [w for w in self.writes if (w.event.topic, w.event.partition) != (topic, partition)]
        self.reconciles = [r for r in self.reconciles if (r.topic, r.partition) != (topic, partition)]
        self.next_offsets.pop((topic, partition), None)

    def newest(self) -> list[Write]:
        """One write per (sink table, key): the highest position wins, TOAST gaps filled in."""
        best: dict[tuple[str, str, tuple[Any, ...]], Write] = {}
        for w in sorted(self.writes, key=lambda w: w.position):
            slot = (w.mapping.sink_schema, w.mapping.sink_table, w.key)
            current = best.get(slot)
            best[slot] = w if current is None else merge(current, w)
        return list(best.values())

    def groups(self) -> dict[tuple[TableMapping, bool, frozenset[str]], list[Write]]:
        """Writes that share one statement: same table, hard delete or not, same kept columns."""
        out: dict[tuple[TableMapping, bool, frozenset[str]], list[Write]] = defaultdict(list)
        for w in self.newest():  # TableMapping caches its hash, so keying by it is cheap
            out[(w.mapping, w.hard_delete, frozenset() if w.hard_delete else w.keep)].append(w)
        return out
