"""Where verify, lag and prune learn which tables to compare: the project's declared tables.

Reading the same mappings the workers materialize means the oracle can never drift from the
pipeline's idea of what a sink table holds. Mirrored tables (declared without their columns) are
read back from the sink's catalog, as a restarting worker does; one the workers have not created
yet is left out and named.
"""

from __future__ import annotations

from typing import Any

import psycopg

from streams.project import load_project
from streams.settings import Settings
from streams.sinks.mapping import TableMapping, validate_mappings, with_extra_columns
from streams.sinks.postgres import CATALOG_SQL


def project_mappings(
    settings: Settings, schema: str | None = None, sink: psycopg.Connection[Any] | None = None
) -> list[TableMapping]:
    """The validated mappings of the settings' project (``ConfigError`` if inconsistent), with the
    same ``extra_columns`` the workers were given; mirrored tables from ``sink``'s catalog."""
    return resolve_project(settings, schema, sink)[0]


def resolve_project(
    settings: Settings, schema: str | None = None, sink: psycopg.Connection[Any] | None = None
) -> tuple[list[TableMapping], list[str]]:
    """``project_mappings`` and the declared mirrored tables the sink does not hold yet."""
    missing: list[str] = []
    project = load_project(settings, sink_schema=schema)
    out = with_extra_columns(project.static_mappings(), settings.pipeline.extra_columns)
    tables = project.tables
    for table_id in sorted(tables.mirrored):
        sink_schema, sink_table = tables.sink_table(table_id)
        rows = sink.execute(CATALOG_SQL, [sink_schema, sink_table]).fetchall() if sink is not None else []
        if sink is not None:
            sink.rollback()
        mapping = None
        if rows:
            key = [str(r[0]) for r in sorted((r for r in rows if r[2] is not None), key=lambda r: r[2])]
            mapping = tables.from_sink(table_id, [(str(r[0]), str(r[1])) for r in rows], key)
        if mapping is None:
            missing.append(f"{sink_schema}.{sink_table}")
            continue
        out.append(mapping)
    return list(validate_mappings(out).values()), missing
