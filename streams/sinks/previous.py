"""The previous state of a row, for updates that carry no ``before`` image.

With PostgreSQL's REPLICA IDENTITY DEFAULT (kept on purpose: fault scenario S3 in
tests/faults/README.md needs the TOAST placeholder path exercised) an update has no ``before``,
so a transform cannot tell which columns changed. The sink can: its row for the key *is* the
state just before this event when its position is older than the event's. Rows buffered in the
current batch are newer than the sink and are looked at first. Only text columns are rebuilt
(transforms compare names, emails and phones; typed values would come back in the database's
types, not Debezium's).

When the sink's row is newer than the event (a replay from an older offset) or missing (a key
never seen), there is no honest ``before`` and the event stays as it was: transforms then emit
what they must assume changed (``old_email`` null), exactly as before this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from streams.cdc import ChangeEvent, Op
from streams.sinks import AsyncPostgresSink, TableMapping
from streams.sinks.batch import Write, key_of
from streams.sinks.classify import unavailable
from streams.sinks.ddl import POSITION

TEXT_TYPES = frozenset({"text", "varchar", "char"})
_UPDATE = Op.UPDATE  # read per event: an enum member through its class is ~45 ns in 3.11


@cache
def _text_columns(m: TableMapping, wanted: frozenset[str]) -> list[tuple[str, str]]:
    """(sink name, source name) of the mapping's text value columns the transforms read."""
    return [
        (c.name, c.source)
        for c in m.value_columns
        if c.source in wanted and c.type.split("(")[0].strip() in TEXT_TYPES
    ]


@cache
def _value_index(m: TableMapping) -> dict[str, int]:
    """Sink column name -> its index in ``Write.values``."""
    return {c.name: i for i, c in enumerate(m.value_columns)}


def with_before(change: ChangeEvent, before: Mapping[str, Any]) -> ChangeEvent:
    """``replace(change, before=before)`` without running the dataclass's ``__init__`` again.

    ``dataclasses.replace`` rebuilds all 15 fields through a frozen ``__init__`` (~3.5 µs, for
    most update-heavy events); copying the instance dict is ~0.4 µs. A ``ChangeEvent`` without
    an instance dict (slots) takes the general way.
    """
    if not hasattr(change, "__dict__"):
        return replace(change, before=before)
    new = object.__new__(type(change))
    new.__dict__.update(change.__dict__)
    new.__dict__["before"] = before
    return new


class _Plan(NamedTuple):
    """What ``_previous`` needs of one source table's mapping, worked out once."""

    mapping: TableMapping
    cols: list[tuple[str, str]]  # ``_text_columns``
    at: dict[str, int]  # ``_value_index``
    key_source: str | None  # the source column of a key of one column without ``convert``


def _plan(m: TableMapping, wanted: frozenset[str]) -> _Plan:
    key = m.key_columns
    plain = len(key) == 1 and key[0].convert is None
    return _Plan(m, _text_columns(m, wanted), _value_index(m), key[0].source if plain else None)


def _plain_key(source: str | None, change: ChangeEvent) -> tuple[Any, ...] | None:
    """``key_of`` for a key of one plain column (the usual id), without merging the key into
    the row and converting every key column (~1 µs per update); None when that needs the general
    way: a converted or logical-typed column, or no value (``key_of`` then raises)."""
    if source is None or change.logical_types.get(source) is not None:
        return None
    row = change.row
    if row is not None and source in row:
        raw = row[source]
    else:
        key = change.key
        raw = key.get(source) if isinstance(key, Mapping) else None
    return None if raw is None else (raw,)


class _KeyWrites:
    """One key's writes in the batch, and the answer to the usual question without a scan.

    A hot key collects hundreds of writes per batch; scanning them all for each of its updates
    was quadratic (most of the worker's previous-row cost on the update-heavy replay). Positions
    of one key normally grow, so the incoming update is above all of them and the answer is the
    newest write that is not a hard delete, kept as the writes are indexed. Only an update at or
    below a buffered position (a replay) scans, with the same rule.
    """

    __slots__ = ("best", "top", "writes")

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.top = b""  # the highest position of any of the writes
        # The highest-positioned write that is not a hard delete; of equal ones, the first.
        self.best: Write | None = None

    def add(self, w: Write) -> None:
        self.writes.append(w)
        if w.position > self.top:
            self.top = w.position
        if not w.hard_delete and (self.best is None or w.position > self.best.position):
            self.best = w

    def newest_before(self, incoming: bytes) -> Write | None:
        """The highest-positioned write below ``incoming`` that is not a hard delete."""
        if incoming > self.top:
            return self.best  # every write is below it
        newest: Write | None = None
        for w in self.writes:
            if (
                w.position < incoming
                and not w.hard_delete
                and (newest is None or w.position > newest.position)
            ):
                newest = w
        return newest


def _newest_before(entry: Write | _KeyWrites | None, incoming: bytes) -> Write | None:
    """``_KeyWrites.newest_before`` for an index entry, which is a bare ``Write`` while its key
    has only one write in the batch (most keys: no ``_KeyWrites`` built for each insert)."""
    if entry is None:
        return None
    if type(entry) is _KeyWrites:
        return entry.newest_before(incoming)
    w: Write = entry  # type: ignore[assignment]  # the only other kind of entry
    return w if w.position < incoming and not w.hard_delete else None


def _joined(entry: Write | _KeyWrites, w: Write) -> _KeyWrites:
    """``entry`` (the key's earlier writes, in batch order) with ``w`` added after them."""
    if type(entry) is _KeyWrites:
        entry.add(w)
        return entry
    joined = _KeyWrites()
    joined.add(entry)  # type: ignore[arg-type]  # a bare Write
    joined.add(w)
    return joined


_NO_KEYS: dict[tuple[Any, ...], Write | _KeyWrites] = {}  # a sink table with none (never added to)


class PreviousRows:
    """Rebuilds ``before`` for updates of ``tables`` from the batch, then the sink.

    ``tables``: source table -> the source columns its transform compares. Only those are read
    back (a customers update must not drag its 16 KiB ``bio`` out of the sink).
    """

    def __init__(self, sink: AsyncPostgresSink, tables: Mapping[str, frozenset[str]]) -> None:
        self.sink = sink
        self.tables = tables
        self._conn: psycopg.Connection[Any] | None = None
        self.lookups = 0
        # Per poll: the sink rows of the keys this poll updates, fetched in one query.
        # By source table, then key; None for a key the sink does not have.
        self._fetched: dict[str, dict[tuple[Any, ...], tuple[Any, ...] | None]] = {}
        # Incremental index of the batch's writes by key (a scan per update was O(n^2)).
        # An entry is the key's only write, or a _KeyWrites once it has more than one.
        self._index: dict[tuple[str, str], dict[tuple[Any, ...], Write | _KeyWrites]] = {}
        self._indexed_list: list[Write] | None = None  # the batch's list the index describes
        self._indexed_n = 0
        self._plans: dict[str, _Plan] = {}  # by source table: no mapping hashed per update

    async def prefetch(self, keys: Mapping[str, list[Mapping[str, Any]]]) -> None:
        """Fetch the stored rows of these decoded source keys, one query per table.

        Called once per poll before its records are handled, on the sink's own async connection
        (the event loop keeps fetching meanwhile); single-column keys only (others fall back to
        one lookup per update).
        """
        self._fetched.clear()
        for table, decoded in keys.items():
            m = self.sink.mappings.get(table)
            if m is None or len(m.key) != 1:
                continue
            source = next((c.source for c in m.columns if c.name == m.key[0]), m.key[0])
            wanted = {k[source] for k in decoded if k.get(source) is not None}
            if not wanted:
                continue
            names = [name for name, _ in _text_columns(m, self.tables[table])]
            query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
                sql.SQL(", ").join(sql.Identifier(n) for n in [m.key[0], *names, POSITION]),
                sql.Identifier(m.sink_schema, m.sink_table),
                sql.Identifier(m.key[0]),
            )
            rows = await self._prefetch_query(query, [list(wanted)])
            # Every key of the poll is asked for (inserts too): a key the sink has not is None,
            # put in at C speed (``zip`` makes the one-element key tuples), not one by one.
            fetched = self._fetched[table] = dict.fromkeys(zip(wanted))
            for row in rows:
                fetched[(row[0],)] = tuple(row[1:])

    def fill(self, change: ChangeEvent) -> ChangeEvent:
        if change.op is not _UPDATE or change.before is not None or change.table_id not in self.tables:
            return change
        m = self.sink.mappings.get(change.table_id)
        if m is None or change.position is None:
            return change
        before = self._previous(m, change)
        return change if before is None else with_before(change, before)

    def _previous(self, m: TableMapping, change: ChangeEvent) -> Mapping[str, Any] | None:
        plan = self._plans.get(change.table_id)
        if plan is None or plan.mapping is not m:  # first use, or a mirrored table's new mapping
            plan = self._plans[change.table_id] = _plan(m, self.tables[change.table_id])
        key = _plain_key(plan.key_source, change) or key_of(m, change)
        incoming = change.position.to_bytes() if change.position else b""
        cols = plan.cols
        newest = _newest_before(self._buffered(m, key), incoming)
        if newest is not None:
            # A kept column (TOAST placeholder) has its value only in the sink: left out.
            at = plan.at
            return {src: newest.values[at[name]] for name, src in cols if name not in newest.keep}
        fetched = self._fetched.get(m.source_table)
        if fetched is not None and key in fetched:
            row = fetched[key]
        else:
            row = self._lookup(m, key, [n for n, _ in cols])
        if row is None or bytes(row[-1]) >= incoming:
            return None
        return {src: value for (_, src), value in zip(cols, row[:-1], strict=True)}

    def _buffered(self, m: TableMapping, key: tuple[Any, ...]) -> Write | _KeyWrites | None:
        """The index entry of ``key`` in ``m``'s sink table, after catching up with the batch."""
        writes = self.sink.batch.writes
        if writes is not self._indexed_list or self._indexed_n > len(writes):  # flushed/dropped/revoked
            self._index, self._indexed_list, self._indexed_n = {}, writes, 0
        n = len(writes)
        if self._indexed_n < n:
            self._catch_up(writes[self._indexed_n : n])
            self._indexed_n = n
        return self._index.get((m.sink_schema, m.sink_table), _NO_KEYS).get(key)

    def _catch_up(self, new: list[Write]) -> None:
        """Index ``new`` (the writes added since the last look) by sink table, then key.

        Every buffered write is indexed although few keys are ever asked for (only updates without
        a ``before`` ask), so this runs once per write: on an insert-heavy stream the entry object
        it built for every new key was most of the previous-row cost. A key's only write is its own
        entry now (~0.07 µs per write); a ``_KeyWrites`` is built when a second write comes.
        """
        index = self._index
        last: TableMapping | None = None
        keys: dict[tuple[Any, ...], Write | _KeyWrites] = _NO_KEYS
        for w in new:
            if w.mapping is not last:
                # Per sink table, then by key: no (schema, table, key) tuple built per write.
                last = w.mapping
                keys = index.setdefault((last.sink_schema, last.sink_table), {})
            k = w.key
            entry = keys.get(k)
            if entry is None:
                keys[k] = w
            elif type(entry) is _KeyWrites:
                entry.add(w)  # a hot key
            else:
                keys[k] = _joined(entry, w)

    async def _prefetch_query(self, query: sql.Composed, params: list[Any]) -> list[tuple[Any, ...]]:
        conn = await self.sink.connection()
        try:
            # Its own transaction, committed here: an implicit one left open would turn the
            # flush's transaction into a savepoint.
            async with conn.transaction(), conn.cursor() as cur:
                await cur.execute(query, params)
                self.lookups += 1
                return [tuple(r) for r in await cur.fetchall()]
        except psycopg.errors.UndefinedTable:
            return []  # the sink's tables are created at start; nothing stored yet
        except psycopg.Error as exc:
            await self.sink.close()
            raise unavailable(exc, "previous-row prefetch") from exc

    def _query(self, query: sql.Composed, params: list[Any]) -> list[tuple[Any, ...]]:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.sink.conninfo, autocommit=True)
            self.lookups += 1
            return [tuple(r) for r in self._conn.execute(query, params).fetchall()]
        except psycopg.errors.UndefinedTable:
            return []  # the sink's tables are created at start; nothing stored yet
        except psycopg.Error as exc:
            if self._conn is not None:
                self._conn.close()
            raise unavailable(exc, "previous-row lookup") from exc

    def _lookup(self, m: TableMapping, key: tuple[Any, ...], names: list[str]) -> tuple[Any, ...] | None:
        query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
            sql.SQL(", ").join(sql.Identifier(n) for n in [*names, POSITION]),
            sql.Identifier(m.sink_schema, m.sink_table),
            sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in m.key),
        )
        rows = self._query(query, list(key))
        return rows[0] if rows else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
