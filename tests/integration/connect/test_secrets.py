"""X1 and least privilege: the password never leaves the secrets file; CDC logins see only captured tables."""

from __future__ import annotations

import psycopg
import pymysql
import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.connect.apply import apply_definition
from streams.connect.client import ConnectClient
from streams.connect.definitions import ConnectorDefinition
from streams.settings import Settings

pytestmark = pytest.mark.integration
CONFIG_TOPIC = "_connect-configs"


def _rest_bodies(client: ConnectClient, settings: Settings) -> str:
    import httpx

    base = settings.connect.url
    bodies = [httpx.get(f"{base}/connectors", params={"expand": ["info", "status"]}, timeout=30).text]
    for name in client.names():
        for suffix in ("", "/config", "/status", "/tasks", "/topics", "/offsets"):
            bodies.append(httpx.get(f"{base}/connectors/{name}{suffix}", timeout=30).text)
    return "\n".join(bodies)


def _config_topic_bytes(settings: Settings) -> bytes:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "it-config-topic-scan",
            "enable.auto.commit": False,
        }
    )
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(CONFIG_TOPIC, 0), timeout=10)
        consumer.assign([TopicPartition(CONFIG_TOPIC, 0, 0)])
        chunks: list[bytes] = []
        seen = 0
        while seen < high:
            msg = consumer.poll(10)
            assert msg is not None, f"config topic read stalled at {seen}/{high}"
            seen = msg.offset() + 1
            chunks += [msg.key() or b"", msg.value() or b""]
        return b"\n".join(chunks)
    finally:
        consumer.close()


@pytest.mark.scenario("X1")
def test_password_appears_nowhere(
    settings: Settings,
    client: ConnectClient,
    definitions: dict[str, ConnectorDefinition],
    secrets: dict[str, str],
) -> None:
    for definition in definitions.values():
        apply_definition(client, definition)
    rest = _rest_bodies(client, settings)
    topic = _config_topic_bytes(settings)
    log_path = settings.stack.state_dir.resolve() / "logs" / "connect.log"
    log = log_path.read_bytes() if log_path.exists() else b""
    assert "${file:" in rest, "the placeholder itself should be what REST shows"
    for key in ("customers.password", "orders.password"):
        password = secrets[key]
        assert rest.count(password) == 0, f"{key} in REST responses"
        assert topic.count(password.encode()) == 0, f"{key} in {CONFIG_TOPIC}"
        assert log.count(password.encode()) == 0, f"{key} in {log_path}"
    assert log_path.exists(), f"no Connect log at {log_path}"


def test_debezium_logins_cannot_read_uncaptured_tables(settings: Settings, secrets: dict[str, str]) -> None:
    pg = settings.source_postgres
    with psycopg.connect(
        host=pg.host,
        port=pg.port,
        user="debezium_customers",
        password=secrets["customers.password"],
        dbname=pg.database,
        autocommit=True,
    ) as conn:
        conn.execute("SELECT count(*) FROM public.customers")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM public.customer_notes")
        role = conn.execute(
            "SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, True)
    maria = settings.source_mariadb
    conn2 = pymysql.connect(
        host=maria.host,
        port=maria.port,
        user="debezium_orders",
        password=secrets["orders.password"],
        database=maria.database,
    )
    try:
        with conn2.cursor() as cur:
            cur.execute("SELECT count(*) FROM orders")
            with pytest.raises(pymysql.err.OperationalError, match="denied"):
                cur.execute("SELECT * FROM payment_attempts")
            with pytest.raises(pymysql.err.OperationalError, match="denied"):
                cur.execute("INSERT INTO orders (customer_id) VALUES (1)")
    finally:
        conn2.close()
