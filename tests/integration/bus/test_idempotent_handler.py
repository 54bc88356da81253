"""Handlers run once per event id: a replay of the whole topic has no second effect; poison goes
to the DLQ with the materializer's headers while the agent keeps going."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

import psycopg
import pytest

from streams.settings import Settings
from streams.sinks import conninfo_from
from tests.integration.bus.helpers import (
    bus_env,
    dead_letters,
    email_changed,
    order_placed,
    produce,
    run_until_committed,
    stat,
)
from tests.integration.bus.notify_handlers import POISON_EMAIL
from tests.integration.streams.helpers import REPO, Worker

pytestmark = pytest.mark.integration
EVENTS = 600
HANDLER_DB = "notifications"


def _counts(settings: Settings, schema: str) -> tuple[int, int, int]:
    """Effect rows, ledger rows, and the redeliveries the ledger suppressed."""
    db = settings.sink_postgres.model_copy(update={"database": HANDLER_DB})
    with psycopg.connect(conninfo_from(db)) as conn:
        effects = conn.execute(f'SELECT count(*) FROM "{schema}".it_notifications').fetchone()
        ledger = conn.execute(
            f'SELECT count(*), coalesce(sum(duplicates), 0) FROM "{schema}".bus_processed_events'
        ).fetchone()
    assert effects is not None
    assert ledger is not None
    return int(effects[0]), int(ledger[0]), int(ledger[1])


def test_replay_from_zero_has_no_second_effect_and_poison_goes_to_the_dlq(
    bus_settings: Settings,
    topics: tuple[str, str],
    schema: str,
    handler_schema: str,
    workers: Callable[..., Worker],
) -> None:
    domain, change = topics
    events = [email_changed(domain, i) for i in range(EVENTS)]
    poison = dataclasses.replace(events[100], data={**events[100].data, "new_email": POISON_EMAIL})
    events[100] = poison
    others = [order_placed(domain, i) for i in range(50)]  # no handler for these: ignored
    garbage = (domain, b"7", b"not avro at all")  # no Confluent header, no CloudEvents headers
    produce(bus_settings, events + others, extra=[garbage])
    env = bus_env(
        change, domain,
        handler_modules='["tests.integration.bus.notify_handlers"]', handler_schema=handler_schema,
    ) | {"PYTHONPATH": str(REPO)}  # fmt: skip
    tag = uuid.uuid4().hex[:8]

    first = run_until_committed(bus_settings, workers, f"it-bus-h1-{tag}", schema, env)
    good = EVENTS - 1
    assert _counts(bus_settings, handler_schema) == (good, good, 0)
    assert stat(first, "bus-handlers.applied") == good
    assert stat(first, "bus-handlers.dead_letters") == 2
    letters = dead_letters(bus_settings, f"{domain}.dlq")
    assert sorted(h["cf_error_class"] for h in letters) == ["ValueError", "WireFormatError"]
    assert all(h["cf_source_topic"] == domain for h in letters)
    poisoned = next(h for h in letters if h["cf_error_class"] == "ValueError")
    assert poisoned["ce_id"] == poison.id  # the original headers follow ours

    # A new group replays the whole topic from offset 0 into the same handlers' database.
    second = run_until_committed(bus_settings, workers, f"it-bus-h2-{tag}", schema, env)
    assert stat(second, "bus-handlers.applied") == 0
    assert stat(second, "bus-handlers.duplicates") == good
    assert _counts(bus_settings, handler_schema) == (good, good, good)
    print(
        f"handlers: {good} applied once; replay from 0: {stat(second, 'bus-handlers.duplicates')} duplicates"
    )
