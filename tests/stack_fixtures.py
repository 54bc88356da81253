"""The real local stack, started once per session (a no-op when it already runs).

Imported by the conftest of every folder whose tests need real services."""

from __future__ import annotations

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
