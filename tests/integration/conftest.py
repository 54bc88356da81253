"""The real local stack, started once per session (a no-op when it already runs)."""

from __future__ import annotations

import pytest

from streams.settings import Settings, load_settings
from streams.stack import supervisor
from streams.stack.services import StackContext


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> StackContext:
    """Start every service the integration tests need, or fail with the service's log."""
    supervisor.up(settings, lambda line: print(f"[stack] {line}"))
    return supervisor.context_for(settings)
