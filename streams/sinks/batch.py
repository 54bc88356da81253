"""Buffering and de-duplication of change events between two flushes (pure, no I/O).

One ``ON CONFLICT`` statement must not touch the same key twice, and only the newest state of
a key matters, so each flush keeps, per sink table and key, the event with the highest position.
All events stay buffered until the flush so that ``drop`` (a poison record being dead-lettered)
can fall back to the next-newest event of that key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from functools import cache, cached_property
from operator import attrgetter
from typing import Any, TypeVar

from streams.cdc import ChangeEvent, Op
from streams.cdc.logical import convert_logical, converter_for
from streams.errors import SinkRowError
from streams.sinks.mapping import Column, DeletePolicy, TableMapping
from streams.sinks.reconcile import Reconcile

V = TypeVar("V")

UNAVAILABLE_VALUE = "__debezium_unavailable_value"  # Debezium's unavailable.value.placeholder
_position = attrgetter("position")


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
    # Kept because Debezium sent its placeholder (unchanged TOAST), not because a field is
    # missing: inserting a new row with such a column kept would write NULL (streams.sinks.carry).
    unavailable: frozenset[str] = frozenset()
    # A primary-key change (``__debezium.oldkey``): the old key, and the position of the event
    # that moved it; the old key's row before that position can fill ``unavailable``.
    old_key: tuple[Any, ...] | None = None
    moved_at: bytes = b""
    new_key: tuple[Any, ...] | None = None  # on the old key's delete (``__debezium.newkey``)

    @cached_property
    def hard_delete(self) -> bool:
        # Read a few times per write and flush (grouping, merging, carrying): ``_write`` stores
        # it up front, so those reads are an instance-dict hit; a ``Write(...)`` computes it once.
        return _hard_delete(self.mapping, self.event)


def _hard_delete(mapping: TableMapping, event: ChangeEvent) -> bool:
    return event.op is Op.DELETE and mapping.delete_policy is DeletePolicy.HARD


_new = object.__new__


def _write(  # one parameter per field of Write, in its order
    mapping: TableMapping,
    event: ChangeEvent,
    key: tuple[Any, ...],
    values: tuple[Any, ...],
    keep: frozenset[str],
    deleted_at: datetime | None,
    position: bytes,
    unavailable: frozenset[str],
    old_key: tuple[Any, ...] | None,
    moved_at: bytes,
    new_key: tuple[Any, ...] | None,
) -> Write:
    """``Write(...)`` at a third of the cost: a frozen dataclass's ``__init__`` goes through
    ``object.__setattr__`` once per field (a microsecond per event). Still frozen and equal to
    the constructor's result (unit-tested, with a check that no field is left out); only
    ``to_write`` uses it."""
    w: Write = _new(Write)
    w.__dict__.update(
        mapping=mapping,
        event=event,
        key=key,
        values=values,
        keep=keep,
        deleted_at=deleted_at,
        position=position,
        unavailable=unavailable,
        old_key=old_key,
        moved_at=moved_at,
        new_key=new_key,
        hard_delete=_hard_delete(mapping, event),  # the cached property's value (not a field)
    )
    return w


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


def _key(
    mapping: TableMapping,
    event: ChangeEvent,
    row: Mapping[str, Any],
    columns: tuple[Column, ...] | None = None,
) -> tuple[Any, ...]:
    types = event.logical_types
    key = tuple([_value(c, row, types) for c in columns or _plan(mapping)[0]])
    if None in key:
        msg = f"key columns {list(mapping.key)} incomplete for {mapping.source_table}"
        raise SinkRowError(msg, event.origin, key)
    return key


def key_of(mapping: TableMapping, event: ChangeEvent) -> tuple[Any, ...]:
    """The sink key of ``event`` alone (no value conversion); ``SinkRowError`` if incomplete."""
    return _key(mapping, event, _merged_row(event))


def _moved_key(
    mapping: TableMapping, event: ChangeEvent, other: Mapping[str, Any] | None
) -> tuple[Any, ...] | None:
    """The sink key a move header names; None if absent or not convertible (then nothing can
    be carried over, and ``streams.sinks.carry`` refuses to insert NULL instead)."""
    if other is None:
        return None
    try:
        return _key(mapping, event, other)
    except (SinkRowError, ValueError, TypeError, ArithmeticError):
        return None


@cache  # TableMapping caches its hash: one plan per mapping, not attribute walks per event
def _plan(
    mapping: TableMapping,
) -> tuple[tuple[Column, ...], tuple[tuple[str, str, Any], ...], frozenset[str]]:
    """Key columns; (source, sink name, convert) per value column; every value column's name."""
    values = tuple((c.source, c.name, c.convert) for c in mapping.value_columns)
    return tuple(mapping.key_columns), values, frozenset(name for _, name, _ in values)


_EMPTY: frozenset[str] = frozenset()
# Types Debezium's placeholder never comes as: the common values skip ``is_unavailable``.
_PLAIN = (int, float, bool, Decimal, datetime, date)

# The common row, in one straight function per mapping and writer schema (``_row_builder``).
Builder = Callable[[Mapping[str, Any], str], "tuple[tuple[Any, ...], tuple[Any, ...]] | None"]
_MISSING = object()
_NO_TYPES: Mapping[str, str] = {}
_BUILDERS: dict[tuple[int, int], tuple[TableMapping, Mapping[str, str], Builder]] = {}
_BUILDERS_MAX = 256  # (mapping, writer schema) pairs; past it the cache starts over


def _row_builder(mapping: TableMapping, types: Mapping[str, str]) -> Builder:
    """``build(row, placeholder)`` → (key, values) of a row image, or None when ``to_write``'s
    general loop must decide: a field missing from the image (it may be in the Kafka key, or the
    column is kept), Debezium's placeholder, or a null key column.

    The same values as that loop, without its per-column work that a mapping and a writer schema
    fix once: which converter applies (the column's own, else its semantic type's), the loop and
    the lists. Generated as source text, one statement per column, as ``dataclasses`` does for
    ``__init__``; the identifiers it names are plain variables (``k0``, ``v3``, ``c_v3``), the
    field names are literals (``repr``). Cached by the identities of the mapping and of the
    decoder's per-schema types map (both kept alive in the cache, so an identity is never reused).
    """
    if not types:
        types = _NO_TYPES  # a fresh empty map per event (no logical types) must not miss the cache
    slot = _BUILDERS.get((id(mapping), id(types)))
    if slot is not None and slot[0] is mapping and slot[1] is types:
        return slot[2]
    if len(_BUILDERS) >= _BUILDERS_MAX:
        _BUILDERS.clear()
    build = _compile_builder(mapping, types)
    _BUILDERS[(id(mapping), id(types))] = (mapping, types, build)
    return build


def _compile_builder(mapping: TableMapping, types: Mapping[str, str]) -> Builder:
    key_columns, plan, _ = _plan(mapping)
    env: dict[str, Any] = {"M": _MISSING, "PLAIN": _PLAIN, "unavailable": is_unavailable}
    lines = ["def build(row, ph):"]
    keys: list[str] = []
    for i, c in enumerate(key_columns):
        var, fn = f"k{i}", c.convert or converter_for(types.get(c.source))
        lines.append(f"    {var} = row.get({c.source!r}, M)")
        lines.append(f"    if {var} is M or {var} is None: return None")
        if fn is not None:
            env[f"c_{var}"] = fn
            lines.append(f"    {var} = c_{var}({var})")
            lines.append(f"    if {var} is None: return None")
        keys.append(var)
    values: list[str] = []
    for i, (source, _, convert) in enumerate(plan):
        var, fn = f"v{i}", convert or converter_for(types.get(source))
        lines.append(f"    {var} = row.get({source!r}, M)")
        lines.append(f"    if {var}.__class__ is str:")
        lines.append(f"        if {var} == ph: return None")
        lines.append(f"    elif {var} is M: return None")
        lines.append(
            f"    elif {var} is not None and {var}.__class__ not in PLAIN and unavailable({var}, ph):"
            " return None"
        )
        if fn is None:
            values.append(var)
        else:
            env[f"c_{var}"] = fn
            values.append(f"(None if {var} is None else c_{var}({var}))")
    lines.append(f"    return ({''.join(k + ', ' for k in keys)}), ({''.join(v + ', ' for v in values)})")
    exec("\n".join(lines), env)  # noqa: S102 - our own text: variables and repr'd literals only
    build: Builder = env["build"]
    return build


def to_write(
    mapping: TableMapping,
    event: ChangeEvent,
    placeholder: str = UNAVAILABLE_VALUE,
    old_key: Mapping[str, Any] | None = None,
    new_key: Mapping[str, Any] | None = None,
) -> Write:
    """Extract key and values; a record whose key is incomplete is poison (``SinkRowError``).

    A primary-key-changing update: ``old_key`` on the create (the ``__debezium.oldkey`` header,
    decoded), the source key the row had before; ``new_key`` on the old key's delete.
    """
    assert event.position is not None, "tombstones carry no row"
    if event.op is not Op.DELETE and type(after := event.after) is dict:
        built = _row_builder(mapping, event.logical_types)(after, placeholder)
        if built is not None:
            position = event.position.to_bytes()
            moved = None if old_key is None else _moved_key(mapping, event, old_key)
            return _write(
                mapping,
                event,
                built[0],
                built[1],
                _EMPTY,
                None,
                position,
                _EMPTY,
                moved,
                position if moved is not None else b"",
                None,
            )
    row = _merged_row(event)
    types = event.logical_types
    key_columns, plan, names = _plan(mapping)
    key = _key(mapping, event, row, key_columns)
    position = event.position.to_bytes()
    if event.op is Op.DELETE:
        # A delete keeps every stored value (a soft delete only sets deleted_at).
        return _write(
            mapping,
            event,
            key,
            (None,) * len(plan),
            names,
            event.source_ts or event.ts,
            position,
            _EMPTY,
            None,
            b"",
            None if new_key is None else _moved_key(mapping, event, new_key),
        )
    keep: list[str] = []
    unavailable: list[str] = []
    values: list[Any] = []
    for source, name, convert in plan:
        if source not in row:
            # A column the writer schema does not carry (dropped at the source, or not added
            # yet) keeps its stored value: a missing field is not a NULL.
            keep.append(name)
            values.append(None)
            continue
        raw = row[source]
        t = type(raw)
        if t is str:  # the common case, and the placeholder's usual form: one comparison
            unavailable_here = raw == placeholder
        else:
            unavailable_here = raw is not None and t not in _PLAIN and is_unavailable(raw, placeholder)
        if not unavailable_here:
            if raw is None:
                values.append(None)
            elif convert is not None:
                values.append(convert(raw))
            else:
                logical = types.get(source)
                values.append(raw if logical is None else convert_logical(logical, raw))
        else:
            keep.append(name)
            unavailable.append(name)
            values.append(None)
    moved = None if old_key is None else _moved_key(mapping, event, old_key)
    return _write(
        mapping,
        event,
        key,
        tuple(values),
        frozenset(keep) if keep else _EMPTY,
        None,
        position,
        frozenset(unavailable) if unavailable else _EMPTY,
        moved,
        position if moved is not None else b"",
        None,
    )


def merge(older: Write, newer: Write) -> Write:
    """Fold two writes of one key: columns the newer one keeps take the older one's value.

    Without this, an insert and a later update with an unchanged-TOAST placeholder in the same
    batch would lose the large value; a soft delete after an insert keeps the inserted values.
    """
    # Nothing kept (the common update): nothing to take, nothing unavailable, nothing moved.
    if not newer.keep or newer.hard_delete or older.hard_delete:
        return newer
    cols = newer.mapping.value_columns
    take = _plan(newer.mapping)[2] & _plan(older.mapping)[2] & (newer.keep - older.keep)
    unavailable = (newer.unavailable | (older.unavailable & newer.keep)) - take
    # A later update of a moved row still missing a value: the old key can still supply it.
    moved = newer.old_key is None and older.old_key is not None and bool(unavailable)
    if not take and not moved and unavailable == newer.unavailable:
        return newer
    # By name: the two writes may come from two versions of a mirrored table's mapping.
    old = dict(zip((c.name for c in older.mapping.value_columns), older.values, strict=True))
    values = tuple(old[c.name] if c.name in take else newer.values[i] for i, c in enumerate(cols))
    merged = replace(newer, values=values, keep=newer.keep - take, unavailable=unavailable)
    return replace(merged, old_key=older.old_key, moved_at=older.moved_at) if moved else merged


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
        if offset >= self.next_offsets.get(tp, 0):  # never backwards (a replayed record)
            self.next_offsets[tp] = offset + 1

    def drop(self, topic: str, partition: int, offset: int) -> bool:
        """Remove one record's write (it is being dead-lettered); its offset stays consumed."""
        before = len(self.writes)
        self.writes = [
            w
            for w in self.writes
            if (w.event.topic, w.event.partition, w.event.offset) != (topic, partition, offset)
        ]
        return len(self.writes) != before

    def drop_all(self, origins: Iterable[tuple[str, int, int]]) -> int:
        """``drop`` for many records in one pass (a flush's poison); how many writes went."""
        gone = set(origins)
        before = len(self.writes)
        self.writes = [
            w for w in self.writes if (w.event.topic, w.event.partition, w.event.offset) not in gone
        ]
        return before - len(self.writes)

    def discard_partition(self, topic: str, partition: int) -> None:
        """Forget a revoked partition's uncommitted work; its new owner will redo it."""
        self.writes = [w for w in self.writes if (w.event.topic, w.event.partition) != (topic, partition)]
        self.reconciles = [r for r in self.reconciles if (r.topic, r.partition) != (topic, partition)]
        self.next_offsets.pop((topic, partition), None)

    def newest(self) -> list[Write]:
        """One write per (sink table, key): the highest position wins, TOAST gaps filled in."""
        best: dict[tuple[str, str, tuple[Any, ...]], Write] = {}
        for w in sorted(self.writes, key=_position):
            m = w.mapping
            slot = (m.sink_schema, m.sink_table, w.key)
            current = best.get(slot)
            best[slot] = w if current is None else merge(current, w)
        return list(best.values())

    def groups(self) -> dict[tuple[TableMapping, bool, frozenset[str]], list[Write]]:
        """Writes that share one statement: same table, hard delete or not, same kept columns."""
        return group(self.newest())


def group(writes: Iterable[Write]) -> dict[tuple[TableMapping, bool, frozenset[str]], list[Write]]:
    """``writes`` by statement: same table, hard delete or not, same kept columns."""
    out: dict[tuple[TableMapping, bool, frozenset[str]], list[Write]] = defaultdict(list)
    for w in writes:  # TableMapping caches its hash, so keying by it is cheap
        hard = w.hard_delete
        out[(w.mapping, hard, _EMPTY if hard else w.keep)].append(w)
    return out


def runs_by_mapping(
    writes: Iterable[Write], value: Callable[[Write], V | None]
) -> list[tuple[TableMapping, list[V]]]:
    """Per mapping (by identity, first seen first), ``value`` of each of its writes, None left out.

    A batch's writes come in runs of one mapping: one dict lookup per run, not per write."""
    by_mapping: dict[int, tuple[TableMapping, list[V]]] = {}  # by id: no mapping hashed
    last: TableMapping | None = None
    items: list[V] = []
    for w in writes:
        v = value(w)
        if v is None:
            continue
        m = w.mapping
        if m is not last:
            slot = by_mapping.get(id(m))
            if slot is None:
                slot = by_mapping[id(m)] = (m, [])
            last, items = m, slot[1]
        items.append(v)
    return list(by_mapping.values())
