"""Capture faults the supervisor and the health views must handle, on the real stack, each with a
scratch connector of its own (never the shared `customers`/`orders`).

CH2: the registry dies during a schema change. The task FAILs (`Failed to serialize Avro data …
Connection refused`) and Connect never restarts it; the supervisor loop does, once the registry is
back, with no manual command.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.connect.client import ConnectClient
from streams.connect.heal import Backoff, Cause, HealAction, Healer, classify, heal_forever
from streams.connect.health import gather
from streams.settings import Settings
from streams.stack.smoke import json_consumer
from tests.integration.connect.connect_it_helpers import high_watermark
from tests.integration.connect.scratch import private_registry, scratch_postgres_capture
from tests.polling import poll

CUSTOMERS = Path(__file__).resolve().parents[3] / "connectors" / "customers.json"
# With the registry back and nobody restarting the task, it must still be FAILED this long later.
STAYS_FAILED_S = 15.0


def _avro(url: str) -> dict[str, str]:
    config = json.loads(CUSTOMERS.read_text())["config"]
    return {
        "key.converter": "io.confluent.connect.avro.AvroConverter",
        "key.converter.schema.registry.url": url,
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": url,
        "schema.name.adjustment.mode": "avro",
        # the customers connector's own error settings, so the test covers what ships
        **{k: v for k, v in config.items() if k.startswith("errors.")},
    }


def _failed_trace(client: ConnectClient, name: str) -> str:
    failed = client.status(name).failed_tasks
    return failed[0].trace if failed else ""


@pytest.mark.scenario("CH2")
def test_registry_outage_during_schema_change_heals_without_a_manual_command(
    settings: Settings, scenario_numbers: dict[str, Any]
) -> None:
    with (
        private_registry(settings) as (url, start_registry, kill_registry),
        scratch_postgres_capture(settings, "it_heal", **_avro(url)) as scratch,
        ConnectClient(settings.connect.url) as client,
    ):
        scratch.execute(f'INSERT INTO "{scratch.name}" (note) VALUES (%s)', ("first",))
        poll(lambda: high_watermark(settings, scratch.topic) >= 1, 120, "the snapshot event")

        kill_registry()
        scratch.execute(f'ALTER TABLE "{scratch.name}" ADD COLUMN extra text NULL')
        scratch.execute(f'INSERT INTO "{scratch.name}" (note, extra) VALUES (%s, %s)', ("second", "x"))
        trace = poll(lambda: _failed_trace(client, scratch.name), 120, "the task to FAIL")
        assert "Connection refused" in trace, trace
        assert classify(trace) is Cause.TRANSIENT

        start_registry()
        back = time.monotonic()
        # Nothing in Connect restarts it: still FAILED with the registry up (this is the defect).
        time.sleep(STAYS_FAILED_S)  # a fixed window in which nothing may happen (not a sync)
        assert client.status(scratch.name).failed_tasks, "Connect restarted the task by itself"
        assert high_watermark(settings, scratch.topic) == 1

        stop, actions = asyncio.Event(), list[HealAction]()
        loop = asyncio.new_event_loop()
        supervisor = threading.Thread(
            target=loop.run_until_complete,
            args=(
                heal_forever(
                    settings,
                    interval_s=1,
                    backoff=Backoff(initial_s=1, max_s=5),
                    names=(scratch.name,),
                    stop=stop,
                    on_action=actions.append,
                ),
            ),
            daemon=True,
        )
        supervisor.start()
        healing = time.monotonic()
        try:
            poll(
                lambda: high_watermark(settings, scratch.topic) >= 2,
                120,
                "the change made during the outage",
            )
        finally:
            loop.call_soon_threadsafe(stop.set)
            supervisor.join(30)
            loop.close()
        assert client.status(scratch.name).running
        restarts = [a for a in actions if a.restarted]
        scenario_numbers.update(
            {
                "registry_down_to_task_failed": "FAILED (Connection refused)",
                "failed_after_registry_back_s": round(healing - back, 1),
                "supervisor_start_to_change_on_topic_s": round(time.monotonic() - healing, 1),
                "restarts": len(restarts),
            }
        )
        assert restarts, actions


def _notes_on(settings: Settings, topic: str) -> list[str]:
    consumer = json_consumer(settings, topic)
    try:
        return [str(((r.value or {}).get("after") or {}).get("note", ""))[:40] for r in consumer]
    finally:
        consumer.close()


@pytest.mark.scenario("CH3")
def test_oversized_row_is_reported_stalled_and_the_documented_skip_recovers(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario_numbers: dict[str, Any]
) -> None:
    """CH3: a row larger than Connect may produce (8 MiB) fails the task on every restart. `status`
    and `lag` must say so (they said "ready" and "0"), the supervisor must leave it alone, and the
    README's recovery (skip that one transaction on purpose, recorded) must get capture going."""
    with (
        scratch_postgres_capture(settings, "it_big") as scratch,
        ConnectClient(settings.connect.url) as client,
    ):
        insert = f'INSERT INTO "{scratch.name}" (note) VALUES (%s)'
        scratch.execute(insert, ("first",))
        poll(lambda: high_watermark(settings, scratch.topic) >= 1, 120, "the snapshot event")
        scratch.execute(insert, ("second",))
        poll(lambda: high_watermark(settings, scratch.topic) >= 2, 60, "the streamed insert")
        # ~9.6 MB of random hex: above the producer's 8 MiB max.request.size, and TOAST cannot
        # compress it away, so the slot really retains it.
        scratch.execute(
            f"INSERT INTO \"{scratch.name}\" (note) SELECT string_agg(md5(random()::text), '')"
            " FROM generate_series(1, 300000)"
        )
        scratch.execute(insert, ("after-big",))
        trace = poll(lambda: _failed_trace(client, scratch.name), 120, "the task to FAIL")
        assert "RecordTooLargeException" in trace

        health = gather(settings, client)
        (ours,) = [c for c in health.connectors if c.name == scratch.name]
        assert ours.failed
        assert "RecordTooLargeException" in ours.failures[0]
        assert "(permanent)" in ours.failures[0]
        (slot,) = [s for s in health.slots if s.slot == scratch.name]
        assert not slot.active
        assert slot.retained_bytes > 8 * 1024 * 1024, slot
        (action,) = Healer(client, names=(scratch.name,)).heal_once()
        assert not action.restarted
        assert action.cause is Cause.PERMANENT

        runner = CliRunner()
        for command in ("lag", "status"):  # both said all is well before (lag 0, every service ready)
            result = runner.invoke(app, [command])
            assert result.exit_code == 1, (command, result.output)
            assert f"connector {scratch.name} FAILED" in result.output, (command, result.output)
            assert "RecordTooLargeException" in result.output, (command, result.output)

        monkeypatch.setenv("CHANGEFEED_STACK__STATE_DIR", str(tmp_path))  # the skip ledger's home
        result = runner.invoke(app, ["connectors", "skip", scratch.name, "--reason", "CH3 test: 9.6 MB note"])
        assert result.exit_code == 0, result.output
        (record,) = [json.loads(line) for line in (tmp_path / "capture-skips.jsonl").read_text().splitlines()]
        assert record["connector"] == scratch.name
        assert record["tables"] == [f"public.{scratch.name}"]
        assert record["changes"] == 1
        assert record["data_bytes"] > 8 * 1024 * 1024
        assert record["reason"] == "CH3 test: 9.6 MB note"

        poll(lambda: client.status(scratch.name).running, 60, "the task to run again")
        scratch.execute(insert, ("after-skip",))
        poll(lambda: high_watermark(settings, scratch.topic) >= 4, 60, "the changes after the skipped one")
        assert _notes_on(settings, scratch.topic) == ["first", "second", "after-big", "after-skip"]
        scenario_numbers.update(
            {
                "row_bytes": record["data_bytes"],
                "slot_retained_while_failed": slot.retained_bytes,
                "failure": ours.failures[0][:160],
                "skipped": f"xid {record['xid']} {record['first_lsn']}..{record['end_lsn']}",
            }
        )
