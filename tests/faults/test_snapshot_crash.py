"""R2 / R3: capture faults that the recovery work of issue 18 must repair without a human.

R2: Kafka Connect SIGKILLed in the middle of the initial snapshot of a 200k-row PostgreSQL table
while rows are updated and deleted; the stack restarts Connect, the connector snapshots again
(Debezium restarts an unfinished snapshot) and an in-process pipeline materializes the table into
a private sink schema. Oracle: verify PASS (deletes included, via the snapshot reconcile) and no
snapshot record refused as stale by the version guard.

R3: the schema registry SIGKILLed, then ``ALTER TABLE customers ADD COLUMN … NULL`` under the
demo's load with workers running: the customers task fails to serialize the new schema; once the
registry is back, the workers' heal loop restarts the task. No REST call or CLI command here.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from streams.cdc.position import SourcePosition
from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.stack import process, supervisor
from streams.stack.secrets import write_stack_secrets
from streams.stack.services import StackContext
from streams.verify import VerifyOptions, open_databases, verify_wait
from tests.faults.crafting import CUSTOMERS_TOPIC
from tests.faults.pipeline import FaultPipeline, fault_pipeline
from tests.integration.streams.scratch import Scratch, ScratchPipeline
from tests.polling import poll

__all__ = ["fault_pipeline"]

ROWS = 200_000
KILL_AT = 40_000  # snapshot records on the topic when Connect is killed (well before the end)
CONVERGE_TIMEOUT_S = 240.0


def _end_offset(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts]) if parts else {}
        return sum(int(o or 0) for o in ends.values())
    finally:
        consumer.close()


def _task_states(settings: Settings, name: str) -> list[str]:
    """Connector and task states (read-only REST call; [] while Connect does not answer)."""
    try:
        status = httpx.get(f"{settings.connect.url}/connectors/{name}/status", timeout=5).json()
        return [status["connector"]["state"], *(t["state"] for t in status.get("tasks", []))]
    except (httpx.HTTPError, KeyError, ValueError):
        return []


class Churn(threading.Thread):
    """Updates and deletes random rows of the scratch table in small transactions until stopped."""

    def __init__(self, settings: Settings, table: str) -> None:
        super().__init__(name="r2-churn", daemon=True)
        self.settings, self.table = settings, table
        self.stop = threading.Event()
        self.updated = self.deleted = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        db = self.settings.source_postgres
        rng = random.Random(18)
        try:
            password = db.password.get_secret_value()
            with psycopg.connect(host=db.host, port=db.port, user=db.user, dbname=db.database,
                                 password=password, autocommit=True) as conn:  # fmt: skip
                table = psycopg.sql.Identifier(self.table)
                update = psycopg.sql.SQL("UPDATE {} SET tier = 'churn', n = n + 1 WHERE id = ANY(%s)")
                delete = psycopg.sql.SQL("DELETE FROM {} WHERE id = ANY(%s)")
                while not self.stop.is_set():
                    ids = [rng.randint(1, ROWS) for _ in range(20)]
                    self.updated += conn.execute(update.format(table), [ids[:16]]).rowcount
                    self.deleted += conn.execute(delete.format(table), [ids[16:]]).rowcount
                    time.sleep(0.02)  # pacing: ~800 updates and ~200 deletes a second at most
        except BaseException as exc:  # reported by the test
            self.error = exc


def _snapshot_refusals(sink: psycopg.Connection[Any], schema: str) -> tuple[dict[str, int], int]:
    """Ledger entries by reason, and how many stale refusals were of snapshot records.

    A PostgreSQL snapshot record's position is ``(S, 0, txId)`` (its commit-LSN part is 0, which no
    streamed event has); the old, broken shape was ``(0, S, txId)``. Either shape counts.
    """
    ledger = psycopg.sql.Identifier(schema, "changefeed_conflicts")
    reasons = {
        str(r): int(n)
        for r, n in sink.execute(psycopg.sql.SQL("SELECT reason, count(*) FROM {} GROUP BY 1").format(ledger))
    }
    stale = sink.execute(
        psycopg.sql.SQL("SELECT incoming_position FROM {} WHERE reason = 'stale'").format(ledger)
    ).fetchall()
    parts = [SourcePosition.from_bytes(bytes(p)).parts for (p,) in stale]
    return reasons, sum(1 for p in parts if p[1] == 0 or p[0] == 0)


@pytest.fixture
def scratch(fault_settings: Settings) -> Iterator[Scratch]:
    sc = Scratch(fault_settings, "postgres")
    try:
        yield sc
    finally:
        sc.close()


@pytest.fixture
def sink_schema(fault_settings: Settings) -> Iterator[tuple[psycopg.Connection[Any], str]]:
    name = f"r2_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo_from(fault_settings.sink_postgres), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(name)))
        try:
            yield conn, name
        finally:
            conn.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(name)))


@pytest.mark.scenario("R2")
@pytest.mark.timeout(600)
def test_connect_sigkill_mid_initial_snapshot_under_churn_converges_without_refusals(
    fault_stack: StackContext,
    scratch: Scratch,
    sink_schema: tuple[psycopg.Connection[Any], str],
    scenario_numbers: dict[str, Any],
) -> None:
    settings, sc, numbers = fault_stack.settings, scratch, scenario_numbers
    sink, schema = sink_schema
    started = time.monotonic()
    sc.create_tables(ROWS)  # set-based: INSERT … SELECT generate_series
    pipeline: ScratchPipeline | None = None
    churn = Churn(settings, sc.name)
    try:
        write_stack_secrets(settings, fault_stack.paths)  # what the connector's placeholders read
        sc.connect.put_config(sc.name, sc.config())  # the initial snapshot starts
        poll(lambda: _end_offset(settings, sc.topic) > 0, 120, "the first snapshot records")
        group = f"r2-{uuid.uuid4().hex[:8]}"
        pipeline = ScratchPipeline(settings, sc.mapping(schema), sc.topic, group).start()
        churn.start()
        at_kill = poll(
            lambda: _end_offset(settings, sc.topic) >= KILL_AT,
            180,
            f"{KILL_AT} snapshot records",
        )
        pid = fault_stack.paths.pid_file("connect")
        running = process.read_running(pid, fault_stack.marker)
        assert running is not None, "connect is not running"
        os.kill(running.pid, signal.SIGKILL)
        poll(lambda: process.read_running(pid, fault_stack.marker) is None, 30, "connect to exit", 0.05)
        at_kill = _end_offset(settings, sc.topic)
        # The fault must hit mid-snapshot, else this scenario proves nothing.
        assert at_kill < ROWS, f"the snapshot ({at_kill} records) finished before Connect was killed"
        killed = time.monotonic()
        supervisor.up(settings, lambda _line: None)  # the stack restarts what died, nothing more
        ready_s = round(time.monotonic() - killed, 1)
        poll(lambda: set(_task_states(settings, sc.name)) == {"RUNNING"}, 180, "connector RUNNING again")
        running_s = round(time.monotonic() - killed, 1)
        # Churn goes on while the connector snapshots again, then stops so the sink can converge.
        poll(
            lambda: _end_offset(settings, sc.topic) >= at_kill + KILL_AT, 180, "the second snapshot under way"
        )
        churn.stop.set()
        churn.join(30)
        assert churn.error is None, churn.error
        with open_databases(settings) as dbs:
            (result,) = verify_wait(dbs, [sc.mapping(schema)], VerifyOptions(limit=50), CONVERGE_TIMEOUT_S)
        reasons, snapshot_stale = _snapshot_refusals(sink, schema)
        source_rows = sc.sql("SELECT count(*) FROM {t}")[0][0]
        numbers.update(
            {
                "rows": ROWS,
                "topic_records_at_kill": at_kill,
                "restart_to_ready_s": ready_s,
                "connector_running_after_s": running_s,
                "rows_updated": churn.updated,
                "rows_deleted": churn.deleted,
                "source_rows": int(source_rows),
                "sink_rows": result.sink_rows,
                "topic_records": _end_offset(settings, sc.topic),
                "verify": "PASS" if result.ok else "FAIL",
                "ledger_by_reason": reasons,
                "stale_snapshot_refusals": snapshot_stale,
                "total_s": round(time.monotonic() - started, 1),
            }
        )
        assert result.ok, result
        assert snapshot_stale == 0, f"{snapshot_stale} snapshot records refused as stale: {reasons}"
    finally:
        churn.stop.set()
        if pipeline is not None:
            pipeline.stop()


@pytest.mark.scenario("R3")
@pytest.mark.timeout(600)
def test_registry_killed_during_add_column_capture_heals_by_itself(
    fault_pipeline: FaultPipeline, scenario_numbers: dict[str, Any]
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    column = f"r3_{uuid.uuid4().hex[:6]}"
    dlq_before = fp.dlq_counts()
    source = fp.settings.source_postgres
    with (
        psycopg.connect(
            host=source.host,
            port=source.port,
            user=source.user,
            dbname=source.database,
            password=source.password.get_secret_value(),
            autocommit=True,
        ) as src,  # fmt: skip
        fp.workers() as workers,
    ):
        workers.start_one()  # runs the heal loop ([worker] heal_connectors, on by default)
        load = fp.start_load(rate=20, duration_s=60, mix="60:35:5")
        poll(lambda: load.writes >= 100, 60, "the load to be under way")
        fp.stop_service("registry")
        src.execute(psycopg.sql.SQL("ALTER TABLE public.customers ADD COLUMN {} text NULL").format(
            psycopg.sql.Identifier(column)))  # fmt: skip
        # The load updates customers: the next event needs the new schema, which nobody can register.
        failed = poll(
            lambda: "FAILED" in _task_states(fp.settings, "customers") or None,
            60,
            "the customers task to fail",
        )
        killed_for = time.monotonic()
        fp.restart_services()  # the stack restarts the registry; nothing else is called
        ready = time.monotonic()
        end_at_ready = _end_offset(fp.settings, CUSTOMERS_TOPIC)

        def resumed() -> bool:
            return (
                set(_task_states(fp.settings, "customers")) == {"RUNNING"}
                and _end_offset(fp.settings, CUSTOMERS_TOPIC) > end_at_ready
            )

        poll(resumed, 150, "customers capture to resume without a manual restart")
        numbers["registry_ready_to_capture_resumed_s"] = round(time.monotonic() - ready, 1)
        numbers["task_failed_seen"] = bool(failed)
        numbers["registry_restart_s"] = round(ready - killed_for, 1)
        report = load.result(120)
        numbers["load_writes"] = len(report.writes)
        workers.check_alive()
        heals = sum(w.text().count("restarting connector customers") for w in workers.procs)
        numbers["worker_log_restart_lines"] = heals
        fp.oracle(numbers, timeout_s=180, dlq_before=dlq_before)
