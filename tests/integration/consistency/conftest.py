"""Read-your-writes tests on the real local stack."""

from tests.stack_fixtures import settings, stack

__all__ = ["settings", "stack"]
