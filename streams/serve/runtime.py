"""Building the wait hub and the readable tables from the settings and the project."""

from __future__ import annotations

from streams.consistency.sources import Source, project_sources
from streams.consistency.wait import WaitHub
from streams.project import load_project
from streams.serve.reads import SinkTable
from streams.settings import Settings
from streams.sinks import conninfo_from


def sink_conninfo(settings: Settings) -> str:
    return conninfo_from(settings.sink_postgres, application_name="changefeed-serve")


def build_hub(
    settings: Settings, *, poll_interval: float = 0.5, sources: dict[str, Source] | None = None
) -> WaitHub:
    return WaitHub(
        sources=sources if sources is not None else project_sources(settings),
        group=settings.worker.app_id,
        schema=settings.pipeline.sink_schema,
        conninfo=sink_conninfo(settings),
        bootstrap=settings.kafka.bootstrap_servers,
        connect_url=settings.connect.url,
        poll_interval=poll_interval,
    )


def declared_tables(settings: Settings) -> dict[str, SinkTable]:
    """Every declared sink table, by ``name`` and by ``schema.name``."""
    project = load_project(settings)
    out: dict[str, SinkTable] = {}
    for spec in project.file.tables:
        topic = project.topics.get(spec.source)
        if topic is None:
            continue
        t = SinkTable(project.tables.schema_of(spec), spec.sink, topic)
        out[f"{t.schema}.{t.name}"] = t
        out.setdefault(t.name, t)
    return out
