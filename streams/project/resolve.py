"""Declared tables → the sink's ``TableMapping`` s (``streams.sinks.tables.Resolver``).

A static table (``include`` with a type for every column) maps exactly what it declares. A
mirrored table maps every source column it wants, named and typed from the Avro writer schema of
its change events (``pg_type_for``), with the declared renames and type overrides applied; its key
is the declared one, or the Kafka key's fields (the source's primary key). Read back from the
sink's catalog (``from_sink``) the same table gives the same mapping, which is how a worker that
restarts, ``verify`` and ``lag`` learn a mirrored table without waiting for an event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from streams.errors import ConfigError
from streams.project.tables import TableSpec
from streams.sinks.lookup import Lookup
from streams.sinks.mapping import RESERVED_PREFIX, Column, DeletePolicy, TableMapping
from streams.sinks.pgtypes import pg_type_for

# format_type() spellings → the names the sink's type allow-list uses.
_CATALOG_NAMES = {
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "time with time zone": "timetz",
    "time without time zone": "time",
    "character varying": "varchar",
    "character": "char",
}
_CATALOG = re.compile(r"^(?P<base>[a-z ]+?)(?P<mod>\(\d+(,\d+)?\))?(?P<array>\[\])?$")


def catalog_type(format_type: str) -> str:
    """``numeric(12,2)``, ``timestamp with time zone[]`` … as the sink's own type names."""
    match = _CATALOG.match(format_type.strip())
    if match is None:
        return format_type
    base = _CATALOG_NAMES.get(match.group("base"), match.group("base"))
    return f"{base}{match.group('mod') or ''}{match.group('array') or ''}"


class ProjectTables:
    """The declared tables of one project, resolved into sink mappings."""

    def __init__(self, specs: Sequence[TableSpec], default_schema: str) -> None:
        self.specs = {s.source: s for s in specs}
        self.default_schema = default_schema
        self.mirrored = frozenset(s.source for s in specs if not s.static)
        self._lookups = {s.source: tuple(self._lookup(s, lk) for lk in s.lookups) for s in specs}

    def schema_of(self, spec: TableSpec) -> str:
        return spec.schema_ or self.default_schema

    def sink_table(self, table_id: str) -> tuple[str, str]:
        spec = self.specs[table_id]
        return self.schema_of(spec), spec.sink

    def _lookup(self, spec: TableSpec, lk: Any) -> Lookup:
        looked = next((s for s in self.specs.values() if s.sink == lk.table), None)
        if looked is None or self.schema_of(looked) != self.schema_of(spec):
            msg = f"table {spec.sink!r}: lookup of {lk.table!r}, not a declared sink table of its schema"
            raise ConfigError(msg)
        if len(looked.key) != 1:
            msg = f"table {spec.sink!r}: the looked-up table {lk.table!r} must declare a single-column key"
            raise ConfigError(msg)
        columns = tuple(
            (name, (src,) if isinstance(src, str) else tuple(src)) for name, src in lk.columns.items()
        )
        return Lookup(
            table=lk.table,
            key=looked.key[0],
            on=lk.on,
            columns=columns,
            label=lk.label,
            hard_deletes=looked.delete is DeletePolicy.HARD,
        )

    def _mapping(self, spec: TableSpec, columns: list[Column], key: Sequence[str]) -> TableMapping:
        return TableMapping(
            source_table=spec.source,
            sink_table=spec.sink,
            sink_schema=self.schema_of(spec),
            columns=columns,
            key=tuple(spec.key) or tuple(spec.sink_name(k) for k in key),
            delete_policy=spec.delete,
            conflict_policy=spec.conflict,
            truncate=spec.truncate,
            lookups=self._lookups[spec.source],
        )

    def _column(self, spec: TableSpec, source: str, derived_type: str) -> Column:
        override = spec.columns.get(source)
        kind = override.type if override is not None and override.type else derived_type
        return Column(source, spec.sink_name(source) if spec.sink_name(source) != source else "", kind)

    def static_mappings(self) -> list[TableMapping]:
        out = []
        for spec in self.specs.values():
            if spec.static:
                columns = [self._column(spec, c, spec.columns[c].type) for c in spec.include]
                out.append(self._mapping(spec, columns, ()))
        return out

    def from_schema(
        self, table_id: str, fields: Mapping[str, Any], key_fields: Sequence[str]
    ) -> TableMapping | None:
        spec = self.specs.get(table_id)
        if spec is None:
            return None
        columns = []
        for name, avro_type in fields.items():
            if not spec.wants(name):
                continue
            override = spec.columns.get(name)
            try:
                derived = override.type if override is not None and override.type else pg_type_for(avro_type)
            except ValueError as exc:
                msg = f'{table_id}.{name}: {exc}; declare its type: columns.{name} = {{ type = "..." }}'
                raise ConfigError(msg) from exc
            columns.append(self._column(spec, name, derived))
        return self._mapping(spec, columns, key_fields)

    def from_sink(
        self, table_id: str, columns: Sequence[tuple[str, str]], key: Sequence[str]
    ) -> TableMapping | None:
        spec = self.specs.get(table_id)
        if spec is None:
            return None
        by_sink = {spec.sink_name(c): c for c in {*spec.columns, *spec.include}}
        copied = {name for lk in spec.lookups for name in lk.columns}
        mapped = [
            Column(
                by_sink.get(name, name), name if by_sink.get(name, name) != name else "", catalog_type(kind)
            )
            for name, kind in columns
            if not name.startswith(RESERVED_PREFIX) and name not in copied
        ]
        return self._mapping(spec, mapped, [by_sink.get(k, k) for k in key])
