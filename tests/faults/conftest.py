"""Fault scenarios run against the real local stack (started once per session)."""

from tests.stack_fixtures import settings, stack

__all__ = ["settings", "stack"]
