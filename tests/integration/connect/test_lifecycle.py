"""pause/resume/restart/stop, offsets reset and incremental snapshots on a real connector."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from streams.connect.apply import apply_definition, wait_running, wait_state
from streams.connect.client import ConnectClient
from streams.connect.definitions import ConnectorDefinition
from streams.connect.signals import send_snapshot_signal
from streams.settings import Settings
from tests.integration.connect.connect_it_helpers import high_watermark
from tests.polling import poll

pytestmark = pytest.mark.integration


def _insert_customers(settings: Settings, count: int) -> int:
    """Insert ``count`` rows; return how many rows the table now holds."""
    db = settings.source_postgres
    tag = uuid.uuid4().hex[:8]
    with psycopg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(), dbname=db.database
    ) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO public.customers (email, first_name, last_name) VALUES (%s, %s, %s)",
                [(f"it-{tag}-{i}@example.test", "It", f"Row{i}") for i in range(count)],
            )
        row = conn.execute("SELECT count(*) FROM public.customers").fetchone()
    assert row is not None
    return int(row[0])


def test_pause_resume_restart_stop(client: ConnectClient, unique_customers: ConnectorDefinition) -> None:
    name = unique_customers.name
    apply_definition(client, unique_customers)
    client.pause(name)
    wait_state(client, name, "PAUSED")
    client.resume(name)
    assert wait_running(client, name, accept_held=False).running
    client.restart(name, include_tasks=True, only_failed=False)
    assert wait_running(client, name, accept_held=False).running
    client.restart(name, include_tasks=True, only_failed=True)  # nothing failed: a no-op, not an error
    client.stop(name)
    assert wait_state(client, name, "STOPPED").tasks == ()


def test_offsets_reset_replays_the_table(
    settings: Settings, client: ConnectClient, unique_customers: ConnectorDefinition
) -> None:
    name = unique_customers.name
    topic = f"{name}.public.customers"
    rows = _insert_customers(settings, 3)
    apply_definition(client, unique_customers)
    poll(lambda: high_watermark(settings, topic) >= rows, 90, f"initial snapshot of {rows} rows in {topic}")
    poll(lambda: client.offsets(name), 30, "a committed offset")
    before = high_watermark(settings, topic)
    client.stop(name)
    wait_state(client, name, "STOPPED")
    client.reset_offsets(name)
    # Connect answers the reset once its tombstones are written; its offset view follows them.
    poll(lambda: client.offsets(name) == [], 30, "the reset offsets to read back empty")
    client.resume(name)
    wait_running(client, name, accept_held=False)
    poll(
        lambda: high_watermark(settings, topic) >= before + rows, 90, "the table replayed after offsets reset"
    )


def test_incremental_snapshot_re_emits_rows(
    settings: Settings, client: ConnectClient, unique_customers: ConnectorDefinition
) -> None:
    name = unique_customers.name
    topic = f"{name}.public.customers"
    rows = _insert_customers(settings, 2)
    apply_definition(client, unique_customers)
    poll(lambda: high_watermark(settings, topic) >= rows, 90, f"initial snapshot in {topic}")
    before = high_watermark(settings, topic)
    send_snapshot_signal(settings, name, unique_customers.config, ["public.customers"])
    poll(lambda: high_watermark(settings, topic) >= before + rows, 90, "incremental snapshot events")
