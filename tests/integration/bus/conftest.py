"""The bus's tests: the shared stack plus nats-server and redis-server, private topics and names."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.stack import supervisor
from tests.integration.streams.conftest import schema, sink, workers
from tests.integration.streams.helpers import REPO

__all__ = ["schema", "sink", "workers"]
HANDLER_DB = "notifications"


@pytest.fixture(scope="session")
def bus_settings(settings: Settings, stack: object) -> Settings:
    """The settings with both bridges on; `up` starts only what is missing (NATS, Redis)."""
    bus = settings.bus.model_copy(
        update={
            "nats": settings.bus.nats.model_copy(update={"enabled": True}),
            "redis": settings.bus.redis.model_copy(update={"enabled": True}),
        }
    )
    on = settings.model_copy(update={"bus": bus})
    supervisor.up(on, lambda line: print(f"[stack] {line}"))
    # The domain events' contracts (idempotent), which the tests' producer encodes with.
    subprocess.run([str(REPO / ".venv/bin/changefeed"), "schemas", "register"], cwd=REPO, check=True)
    return on


@pytest.fixture
def handler_schema(bus_settings: Settings) -> Iterator[str]:
    name = f"it_bus_{uuid.uuid4().hex[:10]}"
    yield name
    db = bus_settings.sink_postgres.model_copy(update={"database": HANDLER_DB})
    with (
        contextlib.suppress(psycopg.OperationalError),
        psycopg.connect(conninfo_from(db), autocommit=True) as conn,
    ):
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')  # the database may not exist yet


@pytest.fixture
def topics(settings: Settings) -> Iterator[tuple[str, str]]:
    """A private 3-partition domain topic and an empty change topic for the materializer."""
    tag = uuid.uuid4().hex[:8]
    domain, change = f"it{tag}.domain.customers", f"it{tag}.public.customers"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    admin.create_topics([NewTopic(domain, 3, 1), NewTopic(change, 1, 1)])
    yield domain, change
    admin.delete_topics([t for t in admin.list_topics() if t.startswith(f"it{tag}.")])
    admin.close()
