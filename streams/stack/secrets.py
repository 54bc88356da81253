"""The local stack's admin passwords as a secrets file, for throw-away connectors and tests."""

from __future__ import annotations

from pathlib import Path

from streams.secrets import write_properties
from streams.settings import Settings
from streams.stack.paths import StackPaths

STACK_SECRETS = "stack.properties"


def write_stack_secrets(settings: Settings, paths: StackPaths) -> Path:
    """The admin passwords of the local databases, for throw-away connectors and tests."""
    return write_properties(
        paths.secrets / STACK_SECRETS,
        {
            "source_postgres.password": settings.source_postgres.password.get_secret_value(),
            "source_mariadb.password": settings.source_mariadb.password.get_secret_value(),
            "sink_postgres.password": settings.sink_postgres.password.get_secret_value(),
        },
    )
