"""Unchanged TOAST values of rows that have no stored row to keep them from: carry, or refuse.

Debezium sends an unchanged TOASTed column of a PostgreSQL table with REPLICA IDENTITY DEFAULT
as a placeholder, which the sink turns into "keep the stored value". That only works when the
write updates a stored row. A primary-key-changing ``UPDATE`` arrives as a delete of the old key
(plus tombstone) and a create of the new key at the same source position; the create carries
the placeholder and the header ``__debezium.oldkey`` (the delete carries ``__debezium.newkey``),
and the new key has no stored row: a plain upsert would insert NULL. So a moved row's
placeholder columns are carried over, before any statement of the flush runs, from

1. the batch: the old key's state just before its delete, folded from its writes in this batch
   (an insert or an update that carried the value);
2. ``MovedRows``: the old row as the previous flush read it, when a poll ended between the
   delete and the create (the delete's flush keeps the old row's values in memory);
3. the sink: the old key's stored row, read in the flush transaction before the old key's delete
   is applied, used only if its position is older than the create's (a row written later is not
   the moved row's state; a soft-deleted row at exactly that position is its delete, values kept).

What cannot be carried stays "kept". The upsert then reports, per row, whether it inserted
(``statements.upsert_sql``): an update keeps the stored value, a refused write changes nothing
(a replay of the move finds the row its first application wrote, and the version guard keeps
it), but an insert of a row with a kept placeholder column would have written NULL. That raises
``SinkRowError`` naming the columns (``check_inserted``): the flush transaction rolls back and the
worker dead-letters the record. Checked after the fact, so the common case — an update of a
stored row — costs no extra read; the old-key read happens only for moves.

Dead-letter, not the conflict ledger: a ledger entry holds positions, not the record, so the
row would be lost with no way to apply it later; the dead-letter topic keeps the whole record
(headers included) for a replay once the value is back (e.g. after an incremental snapshot of
that row), and an absent row is what ``verify`` reports. Writing NULL is never an option.

Cases that end there: a worker restart or a rebalance between a move's delete and its create
(``MovedRows`` is memory), an update whose key never reached the sink (a pruned tombstone, a
sink created after the topic's snapshot aged out), or a missing header (a header converter
other than Connect's default, JSON-rendering ``SimpleHeaderConverter``).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from psycopg import sql

from streams.cdc import Op
from streams.errors import SinkRowError
from streams.sinks.batch import Write, merge
from streams.sinks.ddl import DELETED_AT, POSITION, column_type, ident
from streams.sinks.mapping import DeletePolicy, TableMapping

OLD_KEY_HEADER = "__debezium.oldkey"
NEW_KEY_HEADER = "__debezium.newkey"
IDX = "_cf_idx"


def moved_key(headers: Iterable[tuple[str, bytes | None]] | None, name: str) -> dict[str, Any] | None:
    """A move header (``OLD_KEY_HEADER`` / ``NEW_KEY_HEADER``) as a dict: Connect's default
    ``SimpleHeaderConverter`` renders the key struct as JSON. None if absent or not a JSON object."""
    for header, raw in headers or ():
        if header != name or raw is None:
            continue
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None
    return None


def old_key_of(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, Any] | None:
    return moved_key(headers, OLD_KEY_HEADER)


def new_key_of(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, Any] | None:
    return moved_key(headers, NEW_KEY_HEADER)


Slot = tuple[str, str, tuple[Any, ...]]  # sink schema, sink table, new key


@dataclass
class MovedRows:
    """Old keys' rows as they were before their delete, for a create not flushed with it.

    The delete and the create of one move are adjacent records of one partition, but a poll can
    end between them: the delete is then flushed (the old row gone) one flush before the create.
    Such a delete's flush reads the old row first and keeps its values here, by new key; the
    create's flush takes them. Memory only (bounded): a worker that restarts in between, or a
    partition that moves to another worker, loses them — that create is then dead-lettered.
    Changes count only once their flush commits (``commit``): a retried flush sees the same.
    """

    limit: int = 10_000
    known: dict[Slot, tuple[bytes, dict[str, Any]]] = field(default_factory=dict)
    added: dict[Slot, tuple[bytes, dict[str, Any]]] = field(default_factory=dict)
    used: set[Slot] = field(default_factory=set)

    def begin(self) -> None:
        self.added.clear()
        self.used.clear()

    def take(self, w: Write) -> dict[str, Any] | None:
        slot = (w.mapping.sink_schema, w.mapping.sink_table, w.key)
        found = self.known.get(slot)
        if found is None or found[0] != w.moved_at:
            return None
        self.used.add(slot)
        return found[1]

    def commit(self) -> None:
        for slot in self.used:
            self.known.pop(slot, None)
        self.known.update(self.added)
        while len(self.known) > self.limit:  # oldest first: dicts keep insertion order
            del self.known[next(iter(self.known))]
        self.begin()


def _same_table(a: Write, b: Write) -> bool:
    return (a.mapping.sink_schema, a.mapping.sink_table) == (b.mapping.sink_schema, b.mapping.sink_table)


def _fill(w: Write, source: Mapping[str, Any]) -> Write:
    """``w`` with its unavailable columns taken from ``source`` (column name → value)."""
    take = w.unavailable & set(source)
    if not take:
        return w
    values = tuple(
        source[c.name] if c.name in take else w.values[i] for i, c in enumerate(w.mapping.value_columns)
    )
    return replace(w, values=values, keep=w.keep - take, unavailable=w.unavailable - take)


def state_before_delete(old: Sequence[Write]) -> Write | None:
    """The old key's row as its writes in the batch leave it just before its (last) delete."""
    state: Write | None = None
    before: Write | None = None
    for x in old:
        if x.event.op is Op.DELETE:
            before, state = state, None
        else:
            state = x if state is None else merge(state, x)
    return state if state is not None else before


def from_batch(w: Write, writes: Sequence[Write]) -> Write:
    """Fill a moved row's unavailable columns from its old key's writes in the same batch."""
    if not w.unavailable or w.old_key is None:
        return w
    # Arrival order among equal positions: the delete of the old key precedes the create.
    old = sorted(
        (x for x in writes if _same_table(x, w) and x.key == w.old_key and x.position <= w.moved_at),
        key=lambda x: x.position,
    )
    state = state_before_delete(old)
    if state is None:
        return w
    known = state.keep
    return _fill(
        w,
        {
            c.name: v
            for c, v in zip(state.mapping.value_columns, state.values, strict=True)
            if c.name not in known
        },
    )


@dataclass(frozen=True)
class Stored:
    """An old key as the sink holds it: row position (None: no row), soft-deleted, values."""

    position: bytes | None
    deleted: bool
    values: dict[str, Any]


@cache
def stored_rows_sql(m: TableMapping, cols: tuple[str, ...]) -> sql.Composed:
    """Per key (arrays = key columns): row position, soft-deleted or not, ``cols``."""
    return sql.SQL(
        "SELECT i.{idx}, t.{pos}, t.{deleted} IS NOT NULL{cols}"
        " FROM unnest({arrays}) WITH ORDINALITY AS i({names}) LEFT JOIN {t} t ON {on}"
    ).format(
        idx=ident(IDX),
        pos=ident(POSITION),
        deleted=ident(DELETED_AT),
        cols=sql.SQL("").join(_read(m, c) for c in cols),
        arrays=sql.SQL(", ").join(sql.SQL("%b::{}[]").format(column_type(c)) for c in m.key_columns),
        names=sql.SQL(", ").join(ident(n) for n in [*m.key, IDX]),
        t=ident(m.sink_schema, m.sink_table),
        on=sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident("t", k), ident("i", k)) for k in m.key),
    )


def _read(m: TableMapping, name: str) -> sql.Composed:
    """A stored value in the Python type the batch binds: JSON as text (the writer sends text and
    lets the sink cast it; psycopg would load a dict, which a ``%b`` array cannot mix with str)."""
    col = m.column(name)
    if col is not None and col.type.strip().lower() in ("json", "jsonb"):
        return sql.SQL(", t.{}::text").format(ident(name))
    return sql.SQL(", t.{}").format(ident(name))


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def carried(w: Write, old: Stored) -> Write:
    """``w`` filled from the old key's stored row if that row is the moved row's state."""
    if old.position is None:
        return w
    soft = w.mapping.delete_policy is DeletePolicy.SOFT
    if old.position < w.moved_at or (soft and old.deleted and old.position == w.moved_at):
        return _fill(w, old.values)
    return w


def unknown_error(w: Write) -> SinkRowError:
    m = w.mapping
    cols = ", ".join(sorted(w.unavailable))
    why = (
        f"; its old key {list(w.old_key)} had no row in the sink older than the move to carry it from"
        if w.old_key is not None
        else "; no old key to carry it from (no __debezium.oldkey header)"
    )
    msg = (
        f"{m.sink_schema}.{m.sink_table}: column(s) {cols} arrived as Debezium's unavailable-value"
        f" placeholder (unchanged TOAST) for a key the sink had no row for{why}; refusing to"
        " insert NULL"
    )
    return SinkRowError(msg, w.event.origin, w.key)


def inserted_errors(writes: Sequence[Write], inserted: Iterable[int]) -> list[SinkRowError]:
    """One ``SinkRowError`` per write (0-based index, in index order) that inserted a kept
    placeholder: all of a statement's at once, so one flush attempt names every such record."""
    return [unknown_error(writes[n]) for n in sorted(inserted) if writes[n].unavailable]


def check_inserted(writes: Sequence[Write], inserted: Iterable[int]) -> None:
    """``SinkRowError`` for the first write (0-based index) that inserted a kept placeholder."""
    for error in inserted_errors(writes, inserted):
        raise error


def _created_here(d: Write, writes: Sequence[Write]) -> bool:
    return any(x.old_key == d.key and x.key == d.new_key and _same_table(x, d) for x in writes)


def carry_steps(
    newest: Sequence[Write], writes: Sequence[Write], moved: MovedRows | None = None
) -> Generator[tuple[Any, list[Any]], list[Any], list[Write]]:
    """Yield (query, params) reads of old keys' stored rows, receive their rows; return
    ``newest`` with moved rows' placeholder columns carried where known. Runs before any write of
    the flush, so old keys are not yet deleted."""
    if moved is not None:
        moved.begin()
    out = [from_batch(w, writes) for w in newest]
    need: dict[TableMapping, list[int]] = {}  # moved rows still missing a value
    keep: dict[TableMapping, list[int]] = {}  # moves' deletes whose create is not in this batch
    for n, w in enumerate(out):
        if w.unavailable and w.old_key is not None and not w.hard_delete:
            found = moved.take(w) if moved is not None else None
            out[n] = w = w if found is None else _fill(w, found)
            if w.unavailable:
                need.setdefault(w.mapping, []).append(n)
        elif w.hard_delete and w.new_key is not None and moved is not None and not _created_here(w, writes):
            keep.setdefault(w.mapping, []).append(n)
    for m in [*need, *(m for m in keep if m not in need)]:
        ns, ds = need.get(m, []), keep.get(m, [])
        cols = set().union(*(out[n].unavailable for n in ns))
        if ds:
            cols |= {c.name for c in m.value_columns}
        names = tuple(sorted(cols))
        keys = [k for n in ns if (k := out[n].old_key) is not None] + [out[n].key for n in ds]
        rows = yield stored_rows_sql(m, names), [[k[i] for k in keys] for i in range(len(m.key))]
        stored = {
            int(r[0]) - 1: Stored(_bytes(r[1]), bool(r[2]), dict(zip(names, r[3:], strict=True)))
            for r in rows
        }
        for j, n in enumerate(ns):
            out[n] = carried(out[n], stored[j])
        for j, n in enumerate(ds, start=len(ns)):
            d, row = out[n], stored[j]
            if (
                moved is not None
                and d.new_key is not None
                and row.position is not None
                and row.position < d.position
            ):
                moved.added[(m.sink_schema, m.sink_table, d.new_key)] = (d.position, row.values)
    return out
