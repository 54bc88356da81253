"""Every domain event reaches JetStream exactly once, though the worker is SIGKILLed mid-fan-out."""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Callable

import pytest

from streams.settings import Settings
from tests.integration.bus.helpers import (
    bus_env,
    dead_letters,
    email_changed,
    produce,
    run_until_committed,
    stat,
)
from tests.integration.bus.nats_reader import delete_stream, read_all, stream_count
from tests.integration.streams.helpers import Worker, committed, end_offsets
from tests.polling import poll

pytestmark = pytest.mark.integration
EVENTS = 4000


def test_jetstream_exactly_once_under_sigkill(
    bus_settings: Settings, topics: tuple[str, str], schema: str, workers: Callable[..., Worker]
) -> None:
    domain, change = topics
    tag = uuid.uuid4().hex[:8]
    stream, prefix, app_id = f"IT_{tag}", f"it{tag}", f"it-bus-nats-{tag}"
    url = bus_settings.bus.nats.url
    events = [email_changed(domain, i) for i in range(EVENTS)]
    produce(bus_settings, events)
    # Commits only every 60 s: the killed worker commits nothing, so all it published is redelivered.
    env = bus_env(
        change, domain,
        nats__enabled="true", nats__stream=stream, nats__subject_prefix=prefix, commit_interval_s="60",
    )  # fmt: skip
    try:
        first = workers(app_id, schema, env=env)

        def quarter() -> bool:
            assert first.proc.poll() is None, first.text()[-3000:]
            return stream_count(url, stream) >= EVENTS // 4

        poll(quarter, 120, "a quarter of the events in JetStream", 0.1)
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        published_before_kill = stream_count(url, stream)
        assert published_before_kill < EVENTS, "the worker finished before the kill: raise EVENTS"

        second = workers(app_id, schema, env={**env, "CHANGEFEED_BUS__COMMIT_INTERVAL_S": "1"})
        group = f"{app_id}-bus"
        ends = end_offsets(bus_settings, domain)
        poll(lambda: committed(bus_settings, group, domain) == ends, 180, "the bus group committed the topic")
        assert second.stop() == 0
        msgs = read_all(url, stream, f"{prefix}.>", EVENTS)
        assert len(msgs) == EVENTS, f"JetStream holds {len(msgs)} messages for {EVENTS} domain events"
        assert {m.headers["ce-id"] for m in msgs} == {e.id for e in events}
        assert all(m.headers["Nats-Msg-Id"] == m.headers["ce-id"] for m in msgs)
        assert all(m.subject == f"{prefix}.dev.changefeed.customers.CustomerEmailChanged" for m in msgs)
        stats = re.search(r"bus stopped: (.*)", second.text())
        assert stats is not None, second.text()[-3000:]
        duplicates = int(re.search(r"bus-nats\.duplicates=(\d+)", stats.group(1)).group(1))  # type: ignore[union-attr]
        # Everything the first worker published came again (its offsets were never committed),
        # and JetStream's duplicate window dropped each one.
        assert duplicates >= published_before_kill > 0
        print(
            f"nats: {EVENTS} events, {published_before_kill} before SIGKILL, {duplicates} duplicates dropped"
        )
    finally:
        delete_stream(url, stream)


def test_an_event_over_nats_max_payload_is_dead_lettered_and_the_rest_flows(
    bus_settings: Settings, topics: tuple[str, str], schema: str, workers: Callable[..., Worker]
) -> None:
    """A 2 MiB domain event (Kafka takes it; nats-server's max_payload is 1 MiB) is retried never:
    it goes to the DLQ with MaxPayloadError and the events behind it reach JetStream."""
    domain, change = topics
    tag = uuid.uuid4().hex[:8]
    stream, prefix, app_id = f"IT_{tag}", f"it{tag}", f"it-bus-big-{tag}"
    url = bus_settings.bus.nats.url
    events = [email_changed(domain, n) for n in range(30)]  # every partition gets some
    big = events[15]
    big.data["new_email"] = "x" * (2 * 1024 * 1024)
    produce(bus_settings, events)
    env = bus_env(change, domain, nats__enabled="true", nats__stream=stream, nats__subject_prefix=prefix)
    try:
        stats = run_until_committed(bus_settings, workers, app_id, schema, env)
        assert stat(stats, "bus-nats.published") == 29
        assert stat(stats, "bus-nats.dead_letters") == 1
        msgs = read_all(url, stream, f"{prefix}.>", 29)
        assert {m.headers["ce-id"] for m in msgs} == {e.id for e in events if e is not big}
        letters = dead_letters(bus_settings, f"{domain}.dlq")
        assert len(letters) == 1
        assert any("MaxPayloadError" in v for v in letters[0].values()), letters[0]
    finally:
        delete_stream(url, stream)
