"""Kafka Connect: the REST client, connector definitions, and diff/apply logic."""

from streams.connect.apply import Action, ApplyResult, apply_definition, validate_definition, wait_running
from streams.connect.client import ConnectClient
from streams.connect.definitions import ConnectorDefinition, load_definitions, template_variables
from streams.connect.diff import ConfigDiff, PropertyChange, diff_config
from streams.connect.models import ConnectorStatus, SourceOffset, TaskState, ValidationResult

__all__ = [
    "Action",
    "ApplyResult",
    "ConfigDiff",
    "ConnectClient",
    "ConnectorDefinition",
    "ConnectorStatus",
    "PropertyChange",
    "SourceOffset",
    "TaskState",
    "ValidationResult",
    "apply_definition",
    "diff_config",
    "load_definitions",
    "template_variables",
    "validate_definition",
    "wait_running",
]
