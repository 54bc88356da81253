"""The real local stack, started once per session (a no-op when it already runs).

Imported by the conftest of every folder whose tests need real services. `shifted_settings`
builds a second, private stack beside it (other ports, other state dir) for tests that kill
or restart services, so they never disturb the shared one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings, load_settings
from streams.stack import supervisor
from streams.stack.services import StackContext


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session", autouse=True)
def stack(settings: Settings) -> StackContext:
    """Start every service the integration tests need, or fail with the service's log.

    Autouse: every integration test runs against the real stack, started here if it is not
    running, so a test's own "skip if the service is down" guard never hides a broken stack.
    """
    supervisor.up(settings, lambda line: print(f"[stack] {line}"))
    return supervisor.context_for(settings)


def shifted_settings(base: Settings, state: Path, shift: int, group: str) -> Settings:
    """`base` with every port moved by `shift` and its own state dir and Connect group."""

    def moved(section: object, **update: object) -> object:
        return section.model_copy(update=update)  # type: ignore[attr-defined]

    kafka = base.kafka
    return base.model_copy(
        update={
            "stack": base.stack.model_copy(update={"state_dir": state}),
            "kafka": moved(kafka, port=kafka.port + shift, controller_port=kafka.controller_port + shift),
            "connect": moved(base.connect, port=base.connect.port + shift, group_id=group),
            "registry": moved(base.registry, port=base.registry.port + shift),
            "source_postgres": moved(base.source_postgres, port=base.source_postgres.port + shift),
            "sink_postgres": moved(base.sink_postgres, port=base.sink_postgres.port + shift),
            "source_mariadb": moved(base.source_mariadb, port=base.source_mariadb.port + shift),
        }
    )


def env_for(settings: Settings) -> dict[str, str]:
    """CHANGEFEED_* variables that make a subprocess (worker, CLI) use `settings`' stack."""
    s = settings
    return {
        "CHANGEFEED_STACK__STATE_DIR": str(s.stack.state_dir),
        "CHANGEFEED_KAFKA__PORT": str(s.kafka.port),
        "CHANGEFEED_KAFKA__CONTROLLER_PORT": str(s.kafka.controller_port),
        "CHANGEFEED_CONNECT__PORT": str(s.connect.port),
        "CHANGEFEED_CONNECT__GROUP_ID": s.connect.group_id,
        "CHANGEFEED_REGISTRY__PORT": str(s.registry.port),
        "CHANGEFEED_SOURCE_POSTGRES__PORT": str(s.source_postgres.port),
        "CHANGEFEED_SINK_POSTGRES__PORT": str(s.sink_postgres.port),
        "CHANGEFEED_SOURCE_MARIADB__PORT": str(s.source_mariadb.port),
    }
