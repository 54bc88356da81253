"""The tables file: which source tables a project materializes, into which sink tables, and how.

A project declares its sink tables in one TOML file (``[project] tables`` in the settings), read
here into frozen, validated models. Nothing in the engine names a table; everything it
materializes, verifies, measures for lag or prunes comes from this file::

    transforms = ["myservice.events"]      # modules with register(registry), optional

    [[tables]]
    source = "public.customers"            # schema.table (PostgreSQL) or database.table (MariaDB)
    sink = "customer_directory"            # sink table; schema defaults to [pipeline] sink_schema
    key = ["customer_id"]                  # sink key columns; default: the Kafka key's fields
    delete = "hard"                        # hard | soft
    conflict = "discard_stale"             # discard_stale | last_writer_wins | reject_and_alert
    truncate = "apply"                     # apply | ignore (a source TRUNCATE; ignore warns)
    include = ["id", "email"]              # optional: only these source columns (default: all)
    exclude = ["password_hash"]            # optional: all but these
    columns.id = { name = "customer_id", type = "bigint" }   # optional: rename / override a type

    [[tables.lookups]]                     # optional: copy columns from another declared sink table
    table = "customer_directory"
    on = "customer_id"                     # this table's column holding that table's key
    columns = { customer_name = ["first_name", "last_name"], customer_email = "email" }

A table with neither ``include`` nor types for every column is *mirrored*: its columns and types
come from the Avro schema of the change events (``streams.sinks.resolve``), and a column the
source gains later is added to the sink table at the first event that carries it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streams.errors import ConfigError
from streams.project.invariants import Invariants
from streams.project.sources import SourceSpec
from streams.sinks.mapping import ConflictPolicy, DeletePolicy, TruncatePolicy


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSpec(_Model):
    """A rename and/or a sink type for one source column."""

    name: str = ""  # sink column name; default: the source name
    type: str = ""  # sink type; default: derived from the Avro schema


class LookupSpec(_Model):
    """Columns copied from another declared sink table, joined on one column of this table.

    Each copied column is a column of the looked-up table, or a list of them joined with one
    space (NULLs skipped). The copy is guarded by the looked-up row's own position, so it never
    moves backwards, and converges whichever of the two tables is flushed first.
    """

    table: str
    on: str  # a sink column of this table holding the looked-up table's (single-column) key
    columns: dict[str, str | list[str]]
    name: str = ""  # names the bookkeeping columns; default: the looked-up table

    @property
    def label(self) -> str:
        return self.name or self.table


class TableSpec(_Model):
    source: str
    sink: str
    schema_: Annotated[str, Field(alias="schema")] = ""  # default: [pipeline] sink_schema
    key: tuple[str, ...] = ()
    delete: DeletePolicy = DeletePolicy.HARD
    conflict: ConflictPolicy = ConflictPolicy.DISCARD_STALE
    truncate: TruncatePolicy = TruncatePolicy.APPLY
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    columns: dict[str, ColumnSpec] = {}
    lookups: tuple[LookupSpec, ...] = ()
    topic: str = ""  # default: derived from the connector that captures ``source``

    @field_validator("source")
    @classmethod
    def _qualified(cls, value: str) -> str:
        container, _, table = value.rpartition(".")
        if not container or not table:
            msg = f"source {value!r} must be schema.table (PostgreSQL) or database.table (MariaDB)"
            raise ValueError(msg)
        return value

    @property
    def static(self) -> bool:
        """Columns and types fully declared: the mapping is known before the first event."""
        return bool(self.include) and all(self.columns.get(c, ColumnSpec()).type for c in self.include)

    def sink_name(self, source_column: str) -> str:
        spec = self.columns.get(source_column)
        return spec.name if spec is not None and spec.name else source_column

    def wants(self, source_column: str) -> bool:
        if self.include:
            return source_column in self.include
        return source_column not in self.exclude


class ProjectFile(_Model):
    transforms: tuple[str, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    sources: tuple[SourceSpec, ...] = ()  # per-connector settings (streams.project.sources)
    invariants: Invariants = ()  # streams.project.invariants: checked by `verify invariants`


def parse_tables(text: str, origin: str = "tables file") -> ProjectFile:
    """The validated contents of a tables file; ``ConfigError`` saying where it is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{origin}: not valid TOML: {exc}"
        raise ConfigError(msg) from exc
    try:
        project = ProjectFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        msg = f"{origin}: {problems}"
        raise ConfigError(msg) from exc
    sources = [t.source for t in project.tables]
    twice = sorted({s for s in sources if sources.count(s) > 1})
    if twice:
        msg = f"{origin}: source tables declared twice: {', '.join(twice)}"
        raise ConfigError(msg)
    connectors = [s.connector for s in project.sources]
    twice = sorted({c for c in connectors if connectors.count(c) > 1})
    if twice:
        msg = f"{origin}: [[sources]] declared twice: {', '.join(twice)}"
        raise ConfigError(msg)
    return project


def load_tables(path: Path) -> ProjectFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read the tables file {path}: {exc}; set [project] tables in the settings"
        raise ConfigError(msg) from exc
    return parse_tables(text, str(path))
