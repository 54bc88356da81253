"""Unchanged TOAST values of rows that have no stored row to keep them from: carry, or refuse.

Debezium sends an unchanged TOASTed column of a PostgreSQL table with REPLICA IDENTITY DEFAULT
as a placeholder, which the sink turns into "keep the stored value". That only works when the
write updates a stored row. A primary-key-changing ``UPDATE`` arrives as a delete of the old key
(plus tombstone) and a create of the new key at the same source position; the create carries
the placeholder and the header ``__debezium.oldkey`` (the delete carries ``__debezium.newkey``),
and the new key has no stored row: a plain upsert would insert NULL. So, for every write that
would keep a placeholder column, before any statement of the flush runs:

1. the batch: the old key's state just before its delete, folded from its writes in this batch
   (an insert or an update that carried the value);
2. the sink: the old key's stored row, read in the flush transaction before the old key's delete
   is applied, used only if its position is older than the create's (a row written later is not
   the moved row's state; a soft-deleted row at exactly that position is its delete, values kept);
3. nothing is needed when the new key already has a stored row (the update keeps its value; a
   replay of the move finds the row its first application wrote, and the version guard decides),
   or when a stored tombstone at or after the write's position makes the guard refuse it.

Otherwise the value cannot be known, and the write is refused with ``SinkRowError`` naming the
columns: the flush rolls back and the worker dead-letters that record. Dead-letter, not the
conflict ledger: a ledger entry holds positions, not the record, so the row would be lost with
no way to apply it later; the dead-letter topic keeps the whole record (headers included) for a
replay once the row's value is back (e.g. after an incremental snapshot of that row), and an
absent row is what ``verify`` reports. Writing the row with the column NULL is never an option.

Cases that end there: the old key's delete was flushed in an earlier batch than the create (the
two straddled a poll), the old key never reached the sink, or the header is missing (a header
converter other than Connect's default JSON-rendering ``SimpleHeaderConverter``).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from psycopg import sql

from streams.cdc import Op
from streams.errors import SinkRowError
from streams.sinks.batch import Write, merge
from streams.sinks.ddl import DELETED_AT, POSITION, column_type, ident
from streams.sinks.mapping import ConflictPolicy, DeletePolicy, TableMapping

OLD_KEY_HEADER = "__debezium.oldkey"
IDX = "_cf_idx"


def old_key_of(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, Any] | None:
    """The ``__debezium.oldkey`` header as a dict (Connect renders the key struct as JSON)."""
    for name, raw in headers or ():
        if name != OLD_KEY_HEADER or raw is None:
            continue
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None
    return None


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
    """One key as the sink holds it: row position (None: no row), soft-deleted, tombstone."""

    position: bytes | None
    deleted: bool
    tombstone: bytes | None
    values: dict[str, Any]


@cache
def stored_rows_sql(m: TableMapping, cols: tuple[str, ...]) -> sql.Composed:
    """Per key (arrays = key columns): row position, deleted or not, tombstone position, ``cols``."""
    keys = m.key_columns
    on = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident("t", k), ident("i", k)) for k in m.key)
    tomb: sql.Composable = sql.SQL("NULL::bytea")
    join: sql.Composable = sql.SQL("")
    if m.delete_policy is DeletePolicy.HARD:
        tomb = sql.SQL("d.{}").format(ident(POSITION))
        join = sql.SQL(" LEFT JOIN {d} d ON {on}").format(
            d=ident(m.sink_schema, m.tombstone_table),
            on=sql.SQL(" AND ").join(sql.SQL("{} = {}").format(ident("d", k), ident("i", k)) for k in m.key),
        )
    return sql.SQL(
        "SELECT i.{idx}, t.{pos}, t.{deleted} IS NOT NULL, {tomb}{cols}"
        " FROM unnest({arrays}) WITH ORDINALITY AS i({names}) LEFT JOIN {t} t ON {on}{join}"
    ).format(
        idx=ident(IDX),
        pos=ident(POSITION),
        deleted=ident(DELETED_AT),
        tomb=tomb,
        cols=sql.SQL("").join(_read(m, c) for c in cols),
        arrays=sql.SQL(", ").join(sql.SQL("%b::{}[]").format(column_type(c)) for c in keys),
        names=sql.SQL(", ").join(ident(n) for n in [*m.key, IDX]),
        t=ident(m.sink_schema, m.sink_table),
        on=on,
        join=join,
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


def _carried(w: Write, old: Stored | None) -> bool:
    """The old key's stored row is the moved row's state before the move."""
    if old is None or old.position is None:
        return False
    if old.position < w.moved_at:
        return True
    soft = w.mapping.delete_policy is DeletePolicy.SOFT
    return soft and old.deleted and old.position == w.moved_at


def _refused(w: Write, own: Stored) -> bool:
    """A stored tombstone the version guard will refuse ``w`` against (so it inserts nothing)."""
    if own.tombstone is None:
        return False
    if w.mapping.conflict_policy is ConflictPolicy.LAST_WRITER_WINS:
        return own.tombstone == w.position
    return own.tombstone >= w.position


def unknown_error(w: Write) -> SinkRowError:
    m = w.mapping
    cols = ", ".join(sorted(w.unavailable))
    moved = (
        f"; its old key {list(w.old_key)} has no row in the sink older than this change"
        if w.old_key is not None
        else "; no old key to carry it from (no __debezium.oldkey header)"
    )
    msg = (
        f"{m.sink_schema}.{m.sink_table}: column(s) {cols} arrived as Debezium's unavailable-value"
        f" placeholder (unchanged TOAST) for a key the sink has no row for{moved}; refusing to"
        " insert NULL"
    )
    return SinkRowError(msg, w.event.origin, w.key)


def resolve(w: Write, own: Stored, old: Stored | None) -> Write:
    """``w`` ready to write, its unavailable columns carried where needed; ``SinkRowError`` if
    it would insert a row without knowing them."""
    if own.position is not None or _refused(w, own):
        return w  # an update keeps the stored value; a refused write inserts nothing
    if old is not None and _carried(w, old):
        return _fill(w, old.values)
    raise unknown_error(w)


def carry_steps(
    newest: Sequence[Write], writes: Sequence[Write]
) -> Generator[tuple[Any, list[list[Any]]], list[Any], list[Write]]:
    """Yield (query, params) reads of the stored rows, receive their rows; return ``newest`` with
    unavailable values carried. Runs before any write of the flush (old keys not yet deleted)."""
    out = [from_batch(w, writes) for w in newest]
    need: dict[TableMapping, list[int]] = {}
    for n, w in enumerate(out):
        if w.unavailable and not w.hard_delete:
            need.setdefault(w.mapping, []).append(n)
    for m, ns in need.items():
        cols = tuple(sorted(set().union(*(out[n].unavailable for n in ns))))
        keys = [out[n].key for n in ns] + [k for n in ns if (k := out[n].old_key) is not None]
        params = [[k[i] for k in keys] for i in range(len(m.key))]
        rows = yield stored_rows_sql(m, cols), params
        stored = {
            int(r[0]) - 1: Stored(_bytes(r[1]), bool(r[2]), _bytes(r[3]), dict(zip(cols, r[4:], strict=True)))
            for r in rows
        }
        at = len(ns)
        for j, n in enumerate(ns):
            w = out[n]
            old = None
            if w.old_key is not None:
                old, at = stored[at], at + 1
            out[n] = resolve(w, stored[j], old)
    return out
