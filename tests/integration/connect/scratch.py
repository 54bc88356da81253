"""A scratch PostgreSQL capture of its own (table, slot, publication, topic prefix), and a private
schema registry process, for capture-health tests that must not touch the shared connectors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import httpx
from psycopg import sql

from streams.connect.client import ConnectClient
from streams.errors import ConnectNotFoundError
from streams.settings import Settings
from streams.stack import supervisor
from streams.stack.secrets import write_stack_secrets
from streams.stack.smoke import connect_source_postgres, connector_config, delete_topics, topic_for
from tests.polling import poll


@dataclass
class Scratch:
    name: str  # connector = slot = publication = table = topic prefix
    topic: str
    config: dict[str, str]
    conn: Any  # admin session on the source PostgreSQL, autocommit

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        self.conn.execute(statement, args)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_registry(settings: Settings, port: int | None = None, topic: str | None = None) -> Iterator[Any]:
    """Start our registry on its own port and `_schemas` topic; yields (url, start, kill)."""
    port = port or free_port()
    topic = topic or f"_schemas_it_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CHANGEFEED_REGISTRY__PORT": str(port),
        "CHANGEFEED_REGISTRY__TOPIC": topic,
        "CHANGEFEED_KAFKA__HOST": settings.kafka.host,
        "CHANGEFEED_KAFKA__PORT": str(settings.kafka.port),
    }
    url = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/subjects", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start() -> None:
        procs.append(subprocess.Popen([sys.executable, "-m", "streams.registry"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        poll(answers, 60, f"the private registry on :{port}")

    def kill() -> None:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)

    start()
    try:
        yield url, start, kill
    finally:
        kill()
        delete_topics(settings, [topic])


@contextmanager
def scratch_postgres_capture(settings: Settings, prefix: str, **overrides: str) -> Iterator[Scratch]:
    """A table `public.<name>` (id serial, note text) captured by connector `<name>` (JSON values
    unless `overrides` change the converters). Dropped with its slot, publication and topics."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    secrets = str(write_stack_secrets(settings, supervisor.context_for(settings).paths))
    config = {**connector_config("postgres", name, settings, secrets), **overrides}
    conn = connect_source_postgres(settings)
    scratch = Scratch(name, topic_for(settings, "postgres", name), config, conn)
    table = sql.Identifier(name)
    conn.execute(sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, note text NOT NULL)").format(table))
    connect = ConnectClient(settings.connect.url)
    try:
        connect.put_config(name, config)
        yield scratch
    finally:
        with suppress(ConnectNotFoundError):
            connect.delete(name)
        poll(lambda: name not in connect.names(), 60, f"{name} to be deleted")
        connect.close()
        _drop_slot(conn, name)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))
        conn.close()
        delete_topics(settings, [scratch.topic, name])


def _drop_slot(conn: Any, slot: str) -> None:
    def released() -> bool:
        row = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        return row is None or not row[0]

    poll(released, 60, f"slot {slot} to be released")
    conn.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
    )
