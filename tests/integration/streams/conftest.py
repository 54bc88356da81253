"""Per-test isolation on the shared stack: a private sink schema, consumer group and topic."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.sinks.roles import grant_sink_role
from tests.integration.streams.helpers import Crafter, Worker


@pytest.fixture
def sink(settings: Settings) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(conninfo_from(settings.sink_postgres), autocommit=True) as conn:
        yield conn


@pytest.fixture
def schema(settings: Settings, sink: psycopg.Connection[tuple[object, ...]]) -> Iterator[str]:
    """A fresh sink schema granted to the workers' own login, as `changefeed sink grant` does."""
    name = f"it_streams_{uuid.uuid4().hex[:10]}"
    sink.execute(f'CREATE SCHEMA "{name}"')
    grant_sink_role(settings, name)
    yield name
    sink.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def topic(settings: Settings) -> Iterator[str]:
    """A private 3-partition change topic (plus its DLQ, removed after)."""
    name = f"it{uuid.uuid4().hex[:8]}.public.customers"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    admin.create_topics([NewTopic(name, 3, 1)])
    yield name
    admin.delete_topics([t for t in admin.list_topics() if t.startswith(name)])
    admin.close()


@pytest.fixture
def crafter(settings: Settings) -> Iterator[Crafter]:
    """Per test: a producer outliving its topics would log missing-topic errors for the session."""
    c = Crafter(settings)
    yield c
    c.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(
        app_id: str, schema: str, topics: list[str] | None = None, env: dict[str, str] | None = None
    ) -> Worker:
        w = Worker(app_id, schema, tmp_path / f"{app_id}-{len(started)}.log", topics, env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()
