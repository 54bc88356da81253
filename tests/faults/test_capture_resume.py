"""CH1: SIGKILL MariaDB under a binlog connector configured like connectors/orders.json.

Oracle (the binlog rotated just before the kill): a row inserted once MariaDB is back reaches
the change topic within 10 s of MariaDB accepting logins again (the binlog client's keep-alive
used to look only once a minute: ~65 s),
and while MariaDB is down the capture-health view reports the source unreachable (Connect keeps
saying RUNNING throughout).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pymysql
import pytest

from streams.connect.client import ConnectClient
from streams.connect.health import gather
from streams.settings import Settings
from streams.stack import process, supervisor
from streams.stack.secrets import write_stack_secrets
from streams.stack.services import StackContext
from streams.stack.smoke import connector_config, delete_topics, json_consumer, topic_for
from tests.polling import poll

ORDERS = Path(__file__).resolve().parents[2] / "connectors" / "orders.json"
# The settings of orders.json that decide how fast the binlog client notices and reconnects.
RESUME_KEYS = ("connect.keep.alive", "connect.keep.alive.interval.ms", "connect.timeout.ms")
RESUME_BOUND_S = 10.0


def _resume_settings() -> dict[str, str]:
    config = json.loads(ORDERS.read_text())["config"]
    return {k: config[k] for k in RESUME_KEYS if k in config}


def _kill(ctx: StackContext, service: str) -> None:
    running = process.read_running(ctx.paths.pid_file(service), ctx.marker)
    assert running is not None, f"{service} is not running"
    os.kill(running.pid, signal.SIGKILL)
    poll(lambda: process.read_running(ctx.paths.pid_file(service), ctx.marker) is None, 30,
         f"{service} to be reaped", interval_s=0.05)  # fmt: skip


def _accepts_logins(settings: Settings) -> bool:
    db = settings.source_mariadb
    try:
        pymysql.connect(host=db.host, port=db.port, user=db.user, connect_timeout=1,
                        password=db.password.get_secret_value()).close()  # fmt: skip
    except pymysql.MySQLError:
        return False
    return True


def _execute(settings: Settings, statement: str, args: tuple[Any, ...] = ()) -> None:
    """One statement on a fresh connection: the test's own connection dies with the server."""
    db = settings.source_mariadb
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, database=db.database, autocommit=True,
                           password=db.password.get_secret_value())  # fmt: skip
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
    finally:
        conn.close()


def _ids_on(consumer: Any, want: int, timeout_s: float) -> float:
    """Seconds until a change event for row ``want`` is read (inf when it never comes)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        for record in consumer:
            after = (record.value or {}).get("after") or {}
            if after.get("id") == want:
                return time.monotonic() - started
    return float("inf")


@pytest.mark.scenario("CH1")
def test_mariadb_sigkill_capture_resumes_within_seconds(
    fault_stack: StackContext, scenario_numbers: dict[str, Any]
) -> None:
    settings = fault_stack.settings
    name = f"c1_{uuid.uuid4().hex[:8]}"
    secrets = str(write_stack_secrets(settings, fault_stack.paths))
    topic = topic_for(settings, "mariadb", name)
    config = {**connector_config("mariadb", name, settings, secrets), **_resume_settings()}
    table = f"`{name}`"  # generated above: [a-z0-9_] only
    _execute(settings, f"CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT NOT NULL)")
    with ConnectClient(settings.connect.url) as connect:
        connect.put_config(name, config)
        try:
            _execute(settings, f"INSERT INTO {table} (note) VALUES ('before')")
            consumer = json_consumer(settings, topic)
            assert _ids_on(consumer, 1, 180) < float("inf"), "the snapshot never arrived"
            # Rotate the binlog and write into the new file just before the kill (the restart
            # rotates again): the connector must resume across files, from its stored position.
            _execute(settings, "FLUSH BINARY LOGS")
            _execute(settings, f"INSERT INTO {table} (note) VALUES ('rotated')")  # row 2
            assert _ids_on(consumer, 2, 60) < float("inf"), "the row after the rotation never arrived"

            _kill(fault_stack, "mariadb")
            down = gather(settings, connect)
            unreachable = [s for s in down.sources if s.name == "source_mariadb" and not s.ok]
            connector_state = connect.status(name).state
            supervisor.up(settings, lambda _line: None)  # the stack restarts what died
            poll(lambda: _accepts_logins(settings), 60, "MariaDB to accept logins")
            ready = time.monotonic()
            _execute(settings, f"INSERT INTO {table} (note) VALUES ('after')")  # row 3
            seen_after = _ids_on(consumer, 3, 120)
            resumed_s = time.monotonic() - ready if seen_after < float("inf") else float("inf")
            consumer.close()
            scenario_numbers.update({
                "settings": _resume_settings(),
                "resume_after_ready_s": round(resumed_s, 1),
                "connector_state_while_down": connector_state,
                "health_reported_unreachable": bool(unreachable),
            })  # fmt: skip
            assert unreachable, f"capture health did not report MariaDB unreachable: {down.sources}"
            assert resumed_s < RESUME_BOUND_S, f"capture resumed {resumed_s:.1f} s after MariaDB was ready"
        finally:
            connect.delete(name)
            _execute(settings, f"DROP TABLE IF EXISTS {table}")
            delete_topics(settings, [topic, name, f"{name}.schema-history"])
