"""The local stack runs the real services, captures real changes, and stays on loopback."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from streams.settings import Settings
from streams.stack import health, supervisor
from streams.stack.services import StackContext
from streams.stack.smoke import capture_one_change


def test_every_service_is_ready(stack: StackContext, settings: Settings) -> None:
    rows = supervisor.status(settings)
    assert {row.name: row.state for row in rows} == {row.name: "ready" for row in rows}
    assert {"kafka", "connect", "registry", "source-postgres", "sink-postgres", "mariadb"} <= {
        r.name for r in rows
    }


def test_connect_lists_the_debezium_plugins(stack: StackContext, settings: Settings) -> None:
    answer = httpx.get(f"{settings.connect.url}/connector-plugins", params={"connectorsOnly": "false"})
    classes = health.connect_plugin_classes(answer.json())
    assert classes >= health.REQUIRED_CONNECT_PLUGINS


@pytest.mark.parametrize("source", ["postgres", "mariadb"])
def test_a_source_insert_arrives_on_kafka_within_30s(
    stack: StackContext, settings: Settings, source: str
) -> None:
    captured = capture_one_change(settings, stack.paths, source, timeout_s=30)  # type: ignore[arg-type]
    assert captured.value["op"] == "c"
    assert captured.value["after"]["note"] == "second"
    assert captured.value["source"]["connector"] == source.replace("postgres", "postgresql")
    assert captured.seconds < 30


def test_up_again_is_a_harmless_no_op(stack: StackContext, settings: Settings) -> None:
    before = {row.name: row.pid for row in supervisor.status(settings)}
    lines: list[str] = []
    started = time.monotonic()
    supervisor.up(settings, lines.append)
    assert time.monotonic() - started < 20
    # Usually "already running"; a probe slow once takes the start path, which starts nothing.
    assert not [line for line in lines if ": started" in line], lines
    assert {row.name: row.pid for row in supervisor.status(settings)} == before


@pytest.mark.scenario("X3")
def test_nothing_listens_beyond_loopback(stack: StackContext, settings: Settings) -> None:
    """Fault scenario X3 (tests/faults/README.md): every port of ours is bound to 127.0.0.1 only."""
    pids = {row.pid for row in supervisor.status(settings) if row.pid}
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    ours = [line for line in listening.splitlines() if any(f"pid={pid}," in line for pid in pids)]
    assert ours, listening
    for line in ours:
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")), line
