"""Secrets for Kafka Connect's FileConfigProvider: a properties file only this user can read.

Connector configs reference entries as ``${file:<path>:<key>}``; Connect resolves them when it
starts a task, so the plaintext never enters the config topic or a REST response.
"""

from __future__ import annotations

import os
from pathlib import Path

from streams.settings import Settings
from streams.stack.paths import StackPaths

STACK_SECRETS = "stack.properties"


def write_properties(path: Path, values: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{key}={value}\n" for key, value in values.items())
    return path


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


def placeholder(path: Path, key: str) -> str:
    return f"${{file:{path}:{key}}}"
