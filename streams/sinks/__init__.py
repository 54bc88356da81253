"""Sinks: the tiny contract (add buffers, flush commits) and the PostgreSQL materializer."""

from streams.sinks.batch import UNAVAILABLE_VALUE, is_unavailable
from streams.sinks.classify import Failure, classify
from streams.sinks.contract import Conflict, FlushResult, Sink
from streams.sinks.ddl import (
    AUDIT_TABLE,
    CONFLICTS_TABLE,
    OFFSETS_TABLE,
    audit_trigger_ddl,
    control_tables_ddl,
    materialized_table_ddl,
)
from streams.sinks.ledger import load_conflicts
from streams.sinks.mapping import Column, ConflictPolicy, DeletePolicy, TableMapping, validate_mappings
from streams.sinks.offsets import load_offsets, reset_offsets
from streams.sinks.postgres import PostgresSink, conninfo_from
from streams.sinks.postgres_async import AsyncPostgresSink

__all__ = [
    "AUDIT_TABLE",
    "CONFLICTS_TABLE",
    "OFFSETS_TABLE",
    "UNAVAILABLE_VALUE",
    "AsyncPostgresSink",
    "Column",
    "Conflict",
    "ConflictPolicy",
    "DeletePolicy",
    "Failure",
    "FlushResult",
    "PostgresSink",
    "Sink",
    "TableMapping",
    "audit_trigger_ddl",
    "classify",
    "conninfo_from",
    "control_tables_ddl",
    "is_unavailable",
    "load_conflicts",
    "load_offsets",
    "materialized_table_ddl",
    "reset_offsets",
    "validate_mappings",
]
