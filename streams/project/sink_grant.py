"""``changefeed sink grant``: the workers' login on the sink, granted one schema of the project.

The project's declared tables (and their tombstone tables) and changefeed's control tables that
already exist in the schema under another owner — a sink set up before this login existed — are
handed to the login: it must own what it evolves (``streams.sinks.roles``).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.project.load import load_project
from streams.settings import Settings
from streams.sinks.roles import CONTROL_TABLES, grant_sink_role


@dataclass(frozen=True)
class SinkGrant:
    database: str
    applied: tuple[str, ...]


def grant_sink(settings: Settings, schema: str | None = None) -> SinkGrant:
    """USAGE+CREATE on ``schema`` (default: ``[pipeline] sink_schema``) for the workers' login."""
    schema = schema or settings.pipeline.sink_schema
    tables = [*load_project(settings, sink_schema=schema).sink_tables(schema), *CONTROL_TABLES]
    report = grant_sink_role(settings, schema, tables)
    db = settings.sink_postgres
    verb = "created" if report.created_role else "refreshed"
    done = [f"{verb} login {report.role}", f"granted schema {schema}"]
    done += [f"owner of {schema}.{name}" for name in report.adopted]
    return SinkGrant(f"postgresql {db.host}:{db.port}/{db.database} (sink)", tuple(done))
