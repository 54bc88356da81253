"""The sink's tables: declared mappings, and mirrored ones resolved from the change events' schemas.

A *static* mapping is fully known at start. A *mirrored* table (declared without its columns) is
resolved by a ``Resolver`` from the Avro writer schema of its change events: the first time a
writer schema is seen for the table, the resolver proposes the mapping it means and the sink keeps
the union with what it had (``grow``), so a column the source gains becomes a sink column at the
next event that carries it (its DDL runs in the next flush's transaction), and a column the source
drops keeps its stored values. At start, a mirrored table that already exists in the sink is
seeded from the sink's catalog, so lookups and ``verify`` know it before its first event.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from streams.sinks.mapping import TableMapping, grow, validate_mappings

log = logging.getLogger(__name__)


class Resolver(Protocol):
    """What the sink asks a project about tables it mirrors (``streams.project`` implements it)."""

    mirrored: Collection[str]  # source tables resolved from events

    def from_schema(
        self, table_id: str, fields: Mapping[str, Any], key_fields: Sequence[str]
    ) -> TableMapping | None: ...

    def from_sink(
        self, table_id: str, columns: Sequence[tuple[str, str]], key: Sequence[str]
    ) -> TableMapping | None: ...

    def sink_table(self, table_id: str) -> tuple[str, str]: ...


class SinkTables:
    def __init__(
        self, static: Iterable[TableMapping], resolver: Resolver | None = None, control_schema: str = "public"
    ) -> None:
        self.control_schema = control_schema
        self.audit = False  # set by ensure_schema(audit=True): new tables get the audit trigger too
        self.current: dict[str, TableMapping] = validate_mappings(static)
        self.resolver = resolver
        self.mirrored = frozenset(resolver.mirrored) if resolver is not None else frozenset()
        # Writer schemas already resolved, by (table, id of the decoder's cached field map: the
        # decoder keeps one map per schema id for its lifetime, so the id is stable).
        self._seen: set[tuple[str, int]] = set()
        self.pending: dict[str, TableMapping] = {}  # mappings whose DDL the next flush runs

    def get(
        self, table_id: str, fields: Mapping[str, Any] | None = None, key_fields: Sequence[str] = ()
    ) -> TableMapping | None:
        if table_id not in self.mirrored or fields is None or self.resolver is None:
            return self.current.get(table_id)
        slot = (table_id, id(fields))
        if slot not in self._seen:
            proposed = self.resolver.from_schema(table_id, fields, key_fields)
            if proposed is not None:
                self._adopt(table_id, proposed, ddl=True)
            self._seen.add(slot)
        return self.current.get(table_id)

    def seed(self, table_id: str, mapping: TableMapping) -> None:
        """A mirrored table found in the sink at start: known, no DDL needed."""
        self._adopt(table_id, mapping, ddl=False)

    def _adopt(self, table_id: str, proposed: TableMapping, ddl: bool) -> None:
        current = self.current.get(table_id)
        mapping = proposed if current is None else grow(current, proposed)
        if mapping is current:
            return
        others = [m for t, m in self.current.items() if t != table_id]
        validate_mappings([*others, mapping])  # a new column must not collide with anything
        if current is not None:
            added = [c.name for c in mapping.columns if current.column(c.name) is None]
            log.info("%s.%s gains columns %s", mapping.sink_schema, mapping.sink_table, added)
        self.current[table_id] = mapping
        if ddl:
            self.pending[table_id] = mapping

    def by_sink(self, schema: str, table: str) -> TableMapping | None:
        return next(
            (m for m in self.current.values() if (m.sink_schema, m.sink_table) == (schema, table)), None
        )

    def targets_of(self, m: TableMapping) -> list[TableMapping]:
        """Tables that look ``m`` up (their copied columns follow ``m``'s rows)."""
        return [
            t
            for t in self.current.values()
            if t.sink_schema == m.sink_schema and any(lk.table == m.sink_table for lk in t.lookups)
        ]
