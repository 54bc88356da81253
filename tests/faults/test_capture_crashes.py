"""K3 / K4: SIGKILL Kafka Connect (several times) or the broker while sources run multi-row
INSERTs. The stack restarts the process; nothing calls Connect's REST API to repair anything.
Oracle: every id committed at the source appears on the change topic (duplicates allowed)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import httpx
import pytest

from streams.settings import Settings
from streams.stack import process, supervisor
from streams.stack.secrets import write_stack_secrets
from streams.stack.services import StackContext
from streams.stack.smoke import Source, capture_table, delete_topics, throwaway_connector, topic_for
from tests.faults.capture_load import MultiRowWriter, json_consumer, source_ids, topic_ids

ROWS_BETWEEN_KILLS = 2000


def _kill(ctx: StackContext, service: str) -> None:
    running = process.read_running(ctx.paths.pid_file(service), ctx.marker)
    assert running is not None, f"{service} is not running"
    os.kill(running.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while process.read_running(ctx.paths.pid_file(service), ctx.marker) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the kernel to reap the process


def _wait_rows(writer: MultiRowWriter, rows: int, timeout_s: float = 120) -> None:
    target, deadline = writer.committed + rows, time.monotonic() + timeout_s
    while writer.committed < target:
        assert writer.error is None, writer.error
        assert time.monotonic() < deadline, "the source writer stalled"
        time.sleep(0.1)  # polling the writer thread's counter


def _connector_running(settings: Settings, name: str, timeout_s: float) -> float:
    """Seconds until the connector and its task report RUNNING (read-only REST calls)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            status = httpx.get(f"{settings.connect.url}/connectors/{name}/status", timeout=5).json()
            states = [status["connector"]["state"], *(t["state"] for t in status.get("tasks", []))]
            if len(states) > 1 and set(states) == {"RUNNING"}:
                return time.monotonic() - started
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)  # polling Connect until the rebalanced task reports
    pytest.fail(f"connector {name} not RUNNING within {timeout_s:.0f} s without a manual REST call")


def _first_event_after(consumer: Any, since_count: int, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        for _ in consumer:
            return time.monotonic() - started
    return float("inf")


def _run(ctx: StackContext, source: Source, victim: str, kills: int, numbers: dict[str, Any]) -> None:
    settings = ctx.settings
    name = f"k_{victim[:4]}_{source[:2]}_{uuid.uuid4().hex[:8]}"
    secrets = str(write_stack_secrets(settings, ctx.paths))
    topic = topic_for(settings, source, name)
    try:
        with (
            capture_table(settings, source, name) as insert,
            throwaway_connector(settings, name, source, secrets),
        ):
            insert("first")
            consumer = json_consumer(settings, topic)
            seen: set[int] = set()
            assert topic_ids(consumer, {1}, 60, seen)[0] >= {1}, "the snapshot never arrived"
            writer = MultiRowWriter(settings, source, name)
            writer.start()
            recoveries, ready_times = [], []
            for _ in range(kills):
                _wait_rows(writer, ROWS_BETWEEN_KILLS)
                _kill(ctx, victim)
                killed = time.monotonic()
                supervisor.up(settings, lambda _line: None)  # the stack restarts what died
                ready_times.append(round(time.monotonic() - killed, 1))
                recoveries.append(round(_connector_running(settings, name, 120), 1))
            _wait_rows(writer, ROWS_BETWEEN_KILLS)
            writer.stop.set()
            writer.join(30)
            assert writer.error is None, writer.error
            want = source_ids(settings, source, name)
            seen, duplicates = topic_ids(consumer, want, 180, seen)
            consumer.close()
            missing = want - seen
            numbers.update(
                {
                    "source": source,
                    "rows_committed": len(want),
                    "rows_on_topic": len(seen & want),
                    "missing": len(missing),
                    "topic_duplicates": duplicates,
                    "kills": kills,
                    "restart_to_ready_s": ready_times,
                    "connector_running_after_s": recoveries,
                }
            )
            assert not missing, f"{len(missing)} committed rows never reached {topic}: {sorted(missing)[:20]}"
    finally:
        delete_topics(settings, [topic, name, f"{name}.schema-history"])


@pytest.mark.scenario("K3")
@pytest.mark.parametrize("source", ["postgres", "mariadb"])
def test_connect_sigkill_during_multirow_inserts_loses_nothing(
    fault_stack: StackContext, source: Source, scenario_numbers: dict[str, Any]
) -> None:
    _run(fault_stack, source, "connect", kills=3, numbers=scenario_numbers)


@pytest.mark.scenario("K4")
@pytest.mark.parametrize("source", ["postgres"])
def test_broker_sigkill_mid_run_recovers_without_manual_restart(
    fault_stack: StackContext, source: Source, scenario_numbers: dict[str, Any]
) -> None:
    _run(fault_stack, source, "kafka", kills=1, numbers=scenario_numbers)
