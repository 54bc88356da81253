"""Fixtures shared by the demo's integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from streams.settings import Settings
from streams.stack.services import StackContext
from streams.verify import connections


@pytest.fixture
def sink(settings: Settings, stack: StackContext) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the sink database (the test creates its own schema in it)."""
    with connections.postgres(settings.sink_postgres) as conn:
        yield conn
