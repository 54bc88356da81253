"""Prove the stack captures changes: one throw-away Debezium connector, one row, one event.

Used by `make demo` until the end-to-end demo exists, and by the stack's integration tests.
A first row is read by the connector's snapshot; once that event arrives the replication
slot / binlog position exists, so a second row inserted then must arrive as a create event.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
import pymysql
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from psycopg import sql

from streams.connect.client import ConnectClient
from streams.errors import ConnectNotFoundError, ConnectRequestError, ConnectUnavailableError, StackError
from streams.secrets import placeholder
from streams.settings import Settings
from streams.stack.paths import StackPaths
from streams.stack.secrets import write_stack_secrets

Source = Literal["postgres", "mariadb"]
SNAPSHOT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Captured:
    topic: str
    key: Any
    value: dict[str, Any]
    seconds: float


def connector_config(source: Source, name: str, settings: Settings, secrets: str) -> dict[str, str]:
    common = {
        "tasks.max": "1",
        "topic.prefix": name,
        "snapshot.mode": "initial",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false",
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1",
        "poll.interval.ms": "100",
    }
    if source == "postgres":
        pg = settings.source_postgres
        return {
            **common,
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "plugin.name": "pgoutput",
            "database.hostname": pg.host, "database.port": str(pg.port), "database.user": pg.user,
            "database.password": placeholder(Path(secrets), "source_postgres.password"),
            "database.dbname": pg.database,
            "table.include.list": f"public.{name}",
            "slot.name": name, "publication.name": name,
            "publication.autocreate.mode": "filtered",
        }  # fmt: skip
    db = settings.source_mariadb
    return {
        **common,
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "database.hostname": db.host, "database.port": str(db.port),
        "database.user": db.user, "database.password": placeholder(Path(secrets), "source_mariadb.password"),
        "database.server.id": str(5000 + uuid.uuid4().int % 1000),
        "database.include.list": db.database,
        "table.include.list": f"{db.database}.{name}",
        "schema.history.internal.kafka.bootstrap.servers": settings.kafka.bootstrap_servers,
        "schema.history.internal.kafka.topic": f"{name}.schema-history",
    }  # fmt: skip


def capture_one_change(
    settings: Settings, paths: StackPaths, source: Source, timeout_s: float = 60
) -> Captured:
    """Register a throw-away connector, insert a row, return its change event read from Kafka."""
    name = f"smoke_{source[:2]}_{uuid.uuid4().hex[:8]}"
    secrets = str(write_stack_secrets(settings, paths))
    with (
        capture_table(settings, source, name) as insert,
        throwaway_connector(settings, name, source, secrets),
    ):
        topic = topic_for(settings, source, name)
        insert("first")  # read by the snapshot
        consumer = json_consumer(settings, topic)
        try:
            # Not part of the measured capture: a new connector's first snapshot (MariaDB: schema
            # history topic, read lock) can take long on a busy machine.
            snapshot_s = max(timeout_s, SNAPSHOT_TIMEOUT_S)
            _await(consumer, lambda v: v.get("op") == "r", snapshot_s, what=f"the snapshot event on {topic}")
            started = time.monotonic()
            insert("second")
            key, value = _await(
                consumer, lambda v: v.get("op") == "c", timeout_s, what=f"the insert on {topic}"
            )
            return Captured(topic, key, value, time.monotonic() - started)
        finally:
            consumer.close()
            delete_topics(settings, [topic, name, f"{name}.schema-history"])


def topic_for(settings: Settings, source: Source, name: str) -> str:
    """The change topic of the throw-away table `name` (prefix, schema/database, table)."""
    schema = "public" if source == "postgres" else settings.source_mariadb.database
    return f"{name}.{schema}.{name}"


def json_consumer(settings: Settings, topic: str) -> KafkaConsumer:
    # Connect creates the topic with the first record; a 1 s metadata age notices it quickly.
    return KafkaConsumer(
        topic, bootstrap_servers=settings.kafka.bootstrap_servers, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, consumer_timeout_ms=500, metadata_max_age_ms=1000,
        value_deserializer=lambda b: json.loads(b) if b else None,
        key_deserializer=lambda b: json.loads(b) if b else None,
    )  # fmt: skip


def _await(consumer: KafkaConsumer, match: Any, timeout_s: float, what: str) -> tuple[Any, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for record in consumer:  # yields until consumer_timeout_ms passes without a record
            if isinstance(record.value, dict) and match(record.value):
                return record.key, record.value
    msg = f"no {what} within {timeout_s:.0f} s: check `changefeed logs connect`"
    raise StackError(msg)


@contextmanager
def throwaway_connector(settings: Settings, name: str, source: Source, secrets: str) -> Iterator[None]:
    # The client retries Connect's 409 (a rebalance in progress, e.g. just after `up`).
    with ConnectClient(settings.connect.url) as connect:
        try:
            connect.put_config(name, connector_config(source, name, settings, secrets))
        except (ConnectRequestError, ConnectUnavailableError) as exc:
            msg = f"Connect refused the smoke connector: {exc}"
            raise StackError(msg) from exc
        try:
            yield
        finally:
            with suppress(ConnectNotFoundError):
                connect.delete(name)
            if source == "postgres":
                _drop_slot(settings, name)


def connect_source_postgres(settings: Settings) -> psycopg.Connection[Any]:
    db = settings.source_postgres
    return psycopg.connect(host=db.host, port=db.port, user=db.user, dbname=db.database,
                           password=db.password.get_secret_value(), autocommit=True)  # fmt: skip


def connect_source_mariadb(settings: Settings) -> pymysql.Connection[Any]:
    db = settings.source_mariadb
    return pymysql.connect(host=db.host, port=db.port, user=db.user, database=db.database,
                           password=db.password.get_secret_value(), autocommit=True)  # fmt: skip


@contextmanager
def capture_table(settings: Settings, source: Source, name: str) -> Iterator[Any]:
    if source == "postgres":
        with connect_source_postgres(settings) as conn:
            table = sql.Identifier(name)
            conn.execute(sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, note text NOT NULL)").format(table))
            try:
                yield lambda note: conn.execute(
                    sql.SQL("INSERT INTO {} (note) VALUES (%s)").format(table), (note,)
                )
            finally:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        return
    conn = connect_source_mariadb(settings)
    with conn:
        quoted = "`" + name + "`"  # name is generated above: [a-z0-9_] only
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {quoted} (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT NOT NULL)")
        try:
            yield lambda note: conn.cursor().execute(f"INSERT INTO {quoted} (note) VALUES (%s)", (note,))  # noqa: S608
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {quoted}")


def _drop_slot(settings: Settings, name: str) -> None:
    deadline = time.monotonic() + 30
    with connect_source_postgres(settings) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (name,)
            ).fetchone()
            if row is None:
                break
            if not row[0]:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
                break
            time.sleep(0.2)  # the deleted connector's task releases the slot asynchronously
        conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))


def delete_topics(settings: Settings, topics: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        doomed = [t for t in topics if t in existing]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()
