"""The public interface a project is built on: its tables file and its transforms.

A project's transform module imports from here only::

    from streams.project import ChangeEvent, DomainEvent, HandlerRegistry, Op, TransformError

    def register(registry: HandlerRegistry) -> None:
        registry.table("public.customers", customer_events, publishes=["domain.customers"])
"""

from streams.cdc import ChangeEvent, Op, SourcePosition
from streams.cdc.topics import domain_topic, outbox_topic
from streams.errors import TransformError
from streams.project.events import (
    DomainEvent,
    OutboxMessage,
    domain_event,
    event_id,
    position_record,
    source_name,
    version_of,
)
from streams.project.handlers import HandlerRegistry
from streams.project.load import Project, load_project, load_transforms
from streams.project.tables import ColumnSpec, LookupSpec, ProjectFile, TableSpec, load_tables, parse_tables

__all__ = [
    "ChangeEvent",
    "ColumnSpec",
    "DomainEvent",
    "HandlerRegistry",
    "LookupSpec",
    "Op",
    "OutboxMessage",
    "Project",
    "ProjectFile",
    "SourcePosition",
    "TableSpec",
    "TransformError",
    "domain_event",
    "domain_topic",
    "event_id",
    "load_project",
    "load_tables",
    "load_transforms",
    "outbox_topic",
    "parse_tables",
    "position_record",
    "source_name",
    "version_of",
]
