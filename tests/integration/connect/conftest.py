"""Fixtures for Connect integration tests against the real local stack (`changefeed up`)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from streams.connect.apply import wait_state
from streams.connect.client import ConnectClient
from streams.connect.definitions import (
    ConnectorDefinition,
    load_definitions,
    secrets_file,
    template_variables,
)
from streams.demo.services.migrate import migrate_all
from streams.secrets import read_properties
from streams.settings import Settings, load_settings
from tests.polling import poll

REPO = Path(__file__).resolve().parents[3]
CONNECTORS = REPO / "connectors"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[ConnectClient]:
    try:
        plugins = httpx.get(f"{settings.connect.url}/connector-plugins", timeout=3).json()
    except httpx.HTTPError as exc:
        pytest.skip(f"Kafka Connect not reachable at {settings.connect.url} ({exc}); run `changefeed up`")
    classes = {p["class"] for p in plugins}
    if "io.debezium.connector.postgresql.PostgresConnector" not in classes:
        pytest.skip("Debezium plugins not loaded in Connect")
    with ConnectClient(settings.connect.url) as c:
        yield c


@pytest.fixture(scope="session")
def secrets(settings: Settings) -> dict[str, str]:
    migrate_all(settings)
    return read_properties(secrets_file(settings))


@pytest.fixture(scope="session")
def definitions(settings: Settings, secrets: dict[str, str]) -> dict[str, ConnectorDefinition]:
    return {d.name: d for d in load_definitions(CONNECTORS, template_variables(settings))}


@pytest.fixture(scope="session")
def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})


def _drop_slot(settings: Settings, slot: str) -> None:
    db = settings.source_postgres
    with psycopg.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password.get_secret_value(),
        dbname=db.database,
        autocommit=True,
    ) as conn:

        def inactive() -> bool:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            return row is None or not row[0]

        poll(inactive, 60, f"slot {slot} to be released")
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        )


@pytest.fixture
def unique_customers(
    settings: Settings, client: ConnectClient, definitions: dict[str, ConnectorDefinition], admin: AdminClient
) -> Iterator[ConnectorDefinition]:
    """A copy of the customers connector with its own name, topic prefix and slot; removed after."""
    suffix = uuid.uuid4().hex[:8]
    name = f"it_customers_{suffix}"
    config = copy.deepcopy(definitions["customers"].config)
    config.update({"topic.prefix": name, "slot.name": name})
    yield ConnectorDefinition(name, config, Path(f"{name}.json"))
    _cleanup(settings, client, admin, name, slot=name)


@pytest.fixture
def unique_orders(
    settings: Settings, client: ConnectClient, definitions: dict[str, ConnectorDefinition], admin: AdminClient
) -> Iterator[ConnectorDefinition]:
    suffix = uuid.uuid4().hex[:8]
    name = f"it_orders_{suffix}"
    config = copy.deepcopy(definitions["orders"].config)
    database = settings.source_mariadb.database
    config.update(
        {
            "topic.prefix": name,
            "database.server.id": str(200000 + int(suffix[:5], 16) % 700000),
            "schema.history.internal.kafka.topic": f"{name}.schema-history",
            "predicates.isOutbox.pattern": f"{name}\\.{database}\\.outbox",
        }
    )
    yield ConnectorDefinition(name, config, Path(f"{name}.json"))
    _cleanup(settings, client, admin, name, slot=None)


def _cleanup(
    settings: Settings, client: ConnectClient, admin: AdminClient, name: str, slot: str | None
) -> None:
    if client.config(name) is not None:
        # Stop first: STOPPED with no tasks means the task released its slot before deletion,
        # so a restarting task cannot recreate the slot after it is dropped.
        client.stop(name)
        wait_state(client, name, "STOPPED", timeout_s=60)
        client.delete(name)
        poll(lambda: name not in client.names(), 60, f"{name} to be deleted")
    if slot:
        _drop_slot(settings, slot)
    topics = [t for t in admin.list_topics(timeout=10).topics if name in t]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()
