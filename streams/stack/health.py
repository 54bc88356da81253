"""Readiness probes: each answers True only when the service really serves requests."""

from __future__ import annotations

import contextlib
import socket

import httpx
import psycopg
import pymysql

from streams.settings import DatabaseSettings

# Connect lists these once every plugin directory has been scanned.
REQUIRED_CONNECT_PLUGINS = frozenset(
    {
        "io.debezium.connector.postgresql.PostgresConnector",
        "io.debezium.connector.mysql.MySqlConnector",
        "io.debezium.connector.mariadb.MariaDbConnector",
        "io.debezium.connector.jdbc.JdbcSinkConnector",
        "io.confluent.connect.avro.AvroConverter",
    }
)
# Short: a probe is called in a polling loop with its own deadline.
PROBE_TIMEOUT_S = 2.0


def tcp_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
        return True
    return False


def kafka_ready(bootstrap: str) -> bool:
    """The broker answers a metadata request (not just an open port)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, _, port = bootstrap.rpartition(":")
    if not tcp_open(host, int(port)):
        return False
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        cluster = admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        admin.close()


def connect_plugin_classes(payload: object) -> set[str]:
    """Class names from a `GET /connector-plugins?connectorsOnly=false` answer."""
    if not isinstance(payload, list):
        return set()
    return {str(item["class"]) for item in payload if isinstance(item, dict) and "class" in item}


def connect_ready(url: str) -> bool:
    try:
        answer = httpx.get(f"{url}/connector-plugins", params={"connectorsOnly": "false"}, timeout=5)
    except httpx.HTTPError:
        return False
    if answer.status_code != 200:
        return False
    return connect_plugin_classes(answer.json()) >= REQUIRED_CONNECT_PLUGINS


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=PROBE_TIMEOUT_S).status_code == 200
    except httpx.HTTPError:
        return False


def postgres_ready(db: DatabaseSettings, database: str = "postgres") -> bool:
    try:
        with psycopg.connect(
            host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
            dbname=database, connect_timeout=2,
        ) as conn:  # fmt: skip
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def mariadb_ready(db: DatabaseSettings) -> bool:
    try:
        conn = pymysql.connect(
            host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
            connect_timeout=2,
        )  # fmt: skip
    except pymysql.MySQLError:
        return False
    with conn:
        conn.ping()
    return True
