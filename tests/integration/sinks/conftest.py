"""A real PostgreSQL for sink tests: the local stack's sink if it is up, else a throwaway one.

The throwaway server runs as the ``postgres`` OS user (PostgreSQL refuses root) from a temp dir
on a free loopback port and is stopped at the end of the session. Each test gets its own schema,
so tests never share tables and may run against the stack's ``shipping`` database safely.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from streams.settings import load_settings
from streams.sinks import conninfo_from

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _stack_conninfo() -> str | None:
    conninfo = conninfo_from(load_settings().sink_postgres, connect_timeout_s=2)
    try:
        with psycopg.connect(conninfo):
            return conninfo
    except psycopg.Error:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*args: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def sink_conninfo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    stack = _stack_conninfo()
    if stack is not None:
        yield stack
        return
    if not (PG_BIN / "initdb").exists():
        pytest.skip("sink PostgreSQL not running and no PostgreSQL 15 binaries to start one")
    root = tmp_path_factory.mktemp("sinkpg")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(root / "log"), "start")
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=5"
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")


@pytest.fixture
def schema(sink_conninfo: str) -> Iterator[str]:
    """A fresh schema per test, holding its tables and its own changefeed control tables."""
    name = f"cf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(sink_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(sink_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def db(sink_conninfo: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(sink_conninfo, autocommit=True) as conn:
        yield conn
