"""Capture faults the supervisor and the health views must handle, on the real stack, each with a
scratch connector of its own (never the shared `customers`/`orders`).

C2: the registry dies during a schema change. The task FAILs (`Failed to serialize Avro data …
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

from streams.connect.client import ConnectClient
from streams.connect.heal import Backoff, Cause, HealAction, classify, heal_forever
from streams.settings import Settings
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


@pytest.mark.scenario("C2")
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
