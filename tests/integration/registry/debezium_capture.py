"""Throw-away Debezium connectors that write Confluent Avro through our registry, for the tests.

Each capture owns a unique name used as table, topic prefix, slot and publication, and removes
all of it on exit (connector, slot, publication, table, topics): the stack is shared, so nothing
may outlive the test. Readiness and arrival are polled against deadlines, never slept for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import psycopg
import pymysql
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError
from psycopg import sql

from streams.connect.client import ConnectClient
from streams.connect.models import ConnectorStatus
from streams.errors import ConnectNotFoundError
from streams.settings import Settings
from streams.stack.secrets import STACK_SECRETS, write_stack_secrets
from streams.stack.smoke import connector_config
from streams.stack.supervisor import context_for

Source = Literal["postgres", "mariadb"]
AVRO_CONVERTER = "io.confluent.connect.avro.AvroConverter"
# Debezium polls every 100 ms in these configs; 60 s covers a cold task start on 2 cores.
ARRIVAL_TIMEOUT_S = 60.0
# How often the status/slot loops re-ask; small next to the deadlines they run under.
POLL_S = 0.2


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    offset: int


def avro_converters(registry_url: str) -> dict[str, str]:
    """Key and value through Confluent's Java AvroConverter, subjects by TopicNameStrategy."""
    return {
        "key.converter": AVRO_CONVERTER,
        "value.converter": AVRO_CONVERTER,
        "key.converter.schema.registry.url": registry_url,
        "value.converter.schema.registry.url": registry_url,
    }


@dataclass
class Capture:
    """A running capture: run SQL on its table, read its topic, watch its connector."""

    name: str
    topic: str
    execute: Callable[[str], None]
    connect: ConnectClient
    consumer: KafkaConsumer
    seen: list[Message] = field(default_factory=list)

    def table_sql(self, template: str) -> None:
        """Run ``template`` with ``{table}`` replaced by this capture's (generated, safe) name."""
        self.execute(template.format(table=self.name))

    def messages(self, count: int, timeout_s: float = ARRIVAL_TIMEOUT_S) -> list[Message]:
        """The first ``count`` non-tombstone messages on the topic, waiting up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while len(self.seen) < count and time.monotonic() < deadline:
            for record in self.consumer:  # yields until consumer_timeout_ms passes without one
                if record.value is not None:
                    self.seen.append(Message(record.key, record.value, record.offset))
                if len(self.seen) >= count:
                    break
        if len(self.seen) < count:
            msg = f"{len(self.seen)} of {count} messages on {self.topic} after {timeout_s:.0f} s"
            raise AssertionError(msg)
        return self.seen[:count]

    def wait_status(
        self, done: Callable[[ConnectorStatus], bool], what: str, timeout_s: float = ARRIVAL_TIMEOUT_S
    ) -> ConnectorStatus:
        deadline = time.monotonic() + timeout_s
        last: ConnectorStatus | None = None
        while time.monotonic() < deadline:
            try:
                last = self.connect.status(self.name)
            except ConnectNotFoundError:
                last = None  # just created: Connect has not written the status record yet
            if last is not None and done(last):
                return last
            time.sleep(POLL_S)
        msg = f"connector {self.name} not {what} after {timeout_s:.0f} s (last: {last})"
        raise AssertionError(msg)


def secrets_file(settings: Settings) -> str:
    """The stack's secrets file for ``${file:...}`` placeholders (written only if missing)."""
    paths = context_for(settings).paths
    path = paths.secrets / STACK_SECRETS
    return str(path if path.exists() else write_stack_secrets(settings, paths))


@contextmanager
def capture(settings: Settings, source: Source, registry_url: str, setup: Sequence[str]) -> Iterator[Capture]:
    """Run ``setup`` (``{table}`` = the capture's name), start the connector, yield, clean up.

    Rows inserted by ``setup`` are read by the snapshot: once the first message arrives the slot or
    binlog position exists, so later changes are streamed, not raced against the task's start.
    """
    name = f"avro_{source[:2]}_{uuid.uuid4().hex[:8]}"
    schema = "public" if source == "postgres" else settings.source_mariadb.database
    topic = f"{name}.{schema}.{name}"
    base = connector_config(source, name, settings, secrets_file(settings))
    config = {**base, **avro_converters(registry_url)}
    for dropped in ("key.converter.schemas.enable", "value.converter.schemas.enable"):
        config.pop(dropped, None)
    with _database(settings, source) as execute, ConnectClient(settings.connect.url) as connect:
        consumer: KafkaConsumer | None = None
        try:  # a failing setup statement still leaves nothing behind
            for statement in setup:
                execute(statement.format(table=name))
            consumer = _consumer(settings, topic)
            connect.put_config(name, config)
            yield Capture(name, topic, execute, connect, consumer)
        finally:
            if consumer is not None:
                consumer.close()
            _remove_connector(connect, name)
            if source == "postgres":
                _drop_slot_and_publication(settings, name)
            execute(f"DROP TABLE IF EXISTS {name}")
            _delete_topics(settings, name)


def _consumer(settings: Settings, topic: str) -> KafkaConsumer:
    # Connect creates the topic with the first record; a 1 s metadata age notices it quickly.
    return KafkaConsumer(
        topic, bootstrap_servers=settings.kafka.bootstrap_servers, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, consumer_timeout_ms=500, metadata_max_age_ms=1000,
    )  # fmt: skip


@contextmanager
def _database(settings: Settings, source: Source) -> Iterator[Callable[[str], None]]:
    if source == "postgres":
        pg = settings.source_postgres
        with psycopg.connect(
            host=pg.host, port=pg.port, user=pg.user, dbname=pg.database,
            password=pg.password.get_secret_value(), autocommit=True,
        ) as conn:  # fmt: skip

            def run_pg(statement: str) -> None:
                # bytes, not str: psycopg types str queries as LiteralString; our names are generated.
                conn.execute(statement.encode())

            yield run_pg
        return
    db = settings.source_mariadb
    conn = pymysql.connect(
        host=db.host, port=db.port, user=db.user, database=db.database,
        password=db.password.get_secret_value(), autocommit=True,
    )  # fmt: skip
    with conn:

        def run(statement: str) -> None:
            with conn.cursor() as cur:
                cur.execute(statement)

        yield run


def _remove_connector(connect: ConnectClient, name: str) -> None:
    """Delete, then wait until Connect forgets it, so its task has released slot/binlog reader."""
    try:
        connect.delete(name)
    except ConnectNotFoundError:
        return
    deadline = time.monotonic() + 30  # a task stops within Connect's 5 s graceful shutdown
    while time.monotonic() < deadline and name in connect.names():
        time.sleep(POLL_S)


def _drop_slot_and_publication(settings: Settings, name: str) -> None:
    pg = settings.source_postgres
    deadline = time.monotonic() + 30  # the walsender exits shortly after its task stops
    with psycopg.connect(
        host=pg.host, port=pg.port, user=pg.user, dbname=pg.database,
        password=pg.password.get_secret_value(), autocommit=True,
    ) as conn:  # fmt: skip
        while time.monotonic() < deadline:
            query = "SELECT active FROM pg_replication_slots WHERE slot_name = %s"
            row = conn.execute(query, (name,)).fetchone()
            if row is None:
                break
            if not row[0]:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
                break
            time.sleep(POLL_S)
        conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))


def _delete_topics(settings: Settings, name: str) -> None:
    """Every topic the capture created: its prefix covers data, schema-change and history topics."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        doomed = [t for t in admin.list_topics() if t == name or t.startswith(f"{name}.")]
        if doomed:
            admin.delete_topics(doomed)
    except KafkaError:
        pass  # best effort: a leftover topic has a unique name and harms no other test
    finally:
        admin.close()
