from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.registry.log import MemoryLog
from streams.registry.server import make_app
from streams.registry.service import Registry
from streams.registry.store import SchemaStore


@pytest.fixture
def memory_log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
async def client(memory_log: MemoryLog) -> AsyncIterator[TestClient[Any, Any]]:
    app = make_app(Registry(SchemaStore(), memory_log))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
