"""A project: its tables file, its transform modules, and the topics both need.

``load_project`` is the one door through which the worker, ``verify``, ``lag``, ``prune`` and the
demo learn what to materialize — the demo's project (``streams/demo/project``) comes through it
exactly as a user's does.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from streams.cdc.topics import outbox_topic
from streams.connect.definitions import load_definitions, template_variables
from streams.project.handlers import HandlerRegistry
from streams.project.plugins import call_registers
from streams.project.resolve import ProjectTables
from streams.project.sources import AtomicSource, atomic_connectors, atomic_sources, with_transaction_metadata
from streams.project.tables import ProjectFile, load_tables
from streams.project.topics import topics_of
from streams.settings import Settings
from streams.sinks.mapping import TOMBSTONE_SUFFIX, DeletePolicy, TableMapping


def load_transforms(modules: tuple[str, ...], search_path: Path) -> HandlerRegistry:
    """Import each module (the project folder is importable) and call its ``register(registry)``."""
    if modules and str(search_path) not in sys.path:
        sys.path.insert(0, str(search_path))
    hint = f"; it must be importable from {search_path}"
    return call_registers(modules, HandlerRegistry(), "transform", "registry", hint)


@dataclass
class Project:
    path: Path  # the tables file
    file: ProjectFile
    tables: ProjectTables
    registry: HandlerRegistry
    topics: dict[str, str]  # source table → change topic
    connectors: tuple[str, ...] = ()  # the project's connector definitions (the worker heals them)
    atomic: tuple[AtomicSource, ...] = ()  # sources whose transactions apply whole (sources.py)

    @property
    def atomic_topics(self) -> set[str]:
        """Topics the atomic sources' owners consume; the worker's group does not."""
        return {t for a in self.atomic for t in a.topics}

    @property
    def subscriptions(self) -> list[str]:
        """Every topic the worker consumes: declared tables, transformed tables, outbox aggregates."""
        out = set(self.topics.values()) | {outbox_topic(a) for a in self.registry.aggregates}
        return sorted(out)

    def static_mappings(self) -> list[TableMapping]:
        return self.tables.static_mappings()

    def sink_tables(self, schema: str) -> list[str]:
        """Every table the workers create in ``schema`` for this project's declared tables (each
        mapped table, and its tombstone table under hard deletes), mirrored ones included."""
        out: list[str] = []
        for spec in self.file.tables:
            if self.tables.schema_of(spec) == schema:
                out.append(spec.sink)
                if spec.delete is DeletePolicy.HARD:
                    out.append(spec.sink + TOMBSTONE_SUFFIX)
        return out


def load_project(settings: Settings, *, sink_schema: str | None = None) -> Project:
    """The project the settings name; ``ConfigError`` with what to fix when it is inconsistent."""
    p = settings.project
    path = p.tables
    file = load_tables(path)
    registry = load_transforms(file.transforms, path.parent.resolve())
    tables = ProjectTables(file.tables, sink_schema or settings.pipeline.sink_schema)
    wanted = {t.source for t in file.tables if not t.topic} | (
        set(registry.tables) - {t.source for t in file.tables}
    )
    explicit = {t.source: t.topic for t in file.tables if t.topic}
    found = p.connectors_dir.is_dir()
    definitions = load_definitions(p.connectors_dir, template_variables(settings)) if found else []
    definitions = with_transaction_metadata(definitions, atomic_connectors(file.sources))
    topics = {**topics_of(sorted(wanted), definitions), **explicit}
    tables.static_mappings()  # fail at load, not at the first event, on a bad static table
    declared = {t.source: topics[t.source] for t in file.tables}
    atomic = atomic_sources(file.sources, definitions, declared, str(path))
    return Project(path, file, tables, registry, topics, tuple(d.name for d in definitions), atomic)
