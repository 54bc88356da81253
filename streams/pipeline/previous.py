"""The previous state of a row, for updates that carry no ``before`` image.

With PostgreSQL's REPLICA IDENTITY DEFAULT (kept on purpose: RELIABILITY S3 needs the TOAST
placeholder path exercised) an update has no ``before``, so a transform cannot tell which
columns changed. The sink can: its row for the key *is* the state just before this event when
its position is older than the event's. Rows buffered in the current batch are newer than the
sink and are looked at first. Only text columns are rebuilt (transforms compare names, emails
and phones; typed values would come back in the database's types, not Debezium's).

When the sink's row is newer than the event (a replay from an older offset) or missing (a key
never seen), there is no honest ``before`` and the event stays as it was: transforms then emit
what they must assume changed (``old_email`` null), exactly as before this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from streams.cdc import ChangeEvent, Op
from streams.sinks import AsyncPostgresSink, TableMapping
from streams.sinks.batch import to_write
from streams.sinks.classify import unavailable
from streams.sinks.ddl import POSITION

TEXT_TYPES = frozenset({"text", "varchar", "char"})


def _text_columns(m: TableMapping) -> list[tuple[str, str]]:
    """(sink name, source name) of the mapping's text value columns."""
    return [(c.name, c.source) for c in m.value_columns if c.type.split("(")[0].strip() in TEXT_TYPES]


class PreviousRows:
    """Rebuilds ``before`` for updates of ``tables`` from the batch, then the sink (sync reads)."""

    def __init__(self, sink: AsyncPostgresSink, tables: frozenset[str]) -> None:
        self.sink = sink
        self.tables = tables
        self._conn: psycopg.Connection[Any] | None = None
        self.lookups = 0

    def fill(self, change: ChangeEvent) -> ChangeEvent:
        if change.op is not Op.UPDATE or change.before is not None or change.table_id not in self.tables:
            return change
        m = self.sink.mappings.get(change.table_id)
        if m is None or change.position is None:
            return change
        before = self._previous(m, change)
        return change if before is None else replace(change, before=before)

    def _previous(self, m: TableMapping, change: ChangeEvent) -> Mapping[str, Any] | None:
        key = to_write(m, change).key
        incoming = change.position.to_bytes() if change.position else b""
        cols = _text_columns(m)
        buffered = [
            w
            for w in self.sink.batch.writes
            if w.mapping == m and w.key == key and w.position < incoming and not w.hard_delete
        ]
        if buffered:
            newest = max(buffered, key=lambda w: w.position)
            names = [c.name for c in m.value_columns]
            # A kept column (TOAST placeholder) has its value only in the sink: left out.
            return {src: newest.values[names.index(name)] for name, src in cols if name not in newest.keep}
        row = self._lookup(m, key, [name for name, _ in cols])
        if row is None or bytes(row[-1]) >= incoming:
            return None
        return {src: value for (_, src), value in zip(cols, row[:-1], strict=True)}

    def _lookup(self, m: TableMapping, key: tuple[Any, ...], names: list[str]) -> tuple[Any, ...] | None:
        query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
            sql.SQL(", ").join(sql.Identifier(n) for n in [*names, POSITION]),
            sql.Identifier(m.sink_schema, m.sink_table),
            sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in m.key),
        )
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.sink.conninfo, autocommit=True)
            self.lookups += 1
            row = self._conn.execute(query, list(key)).fetchone()
        except psycopg.errors.UndefinedTable:
            return None  # the sink's tables are created at start; nothing stored yet
        except psycopg.Error as exc:
            if self._conn is not None:
                self._conn.close()
            raise unavailable(exc, "previous-row lookup") from exc
        return None if row is None else tuple(row)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
