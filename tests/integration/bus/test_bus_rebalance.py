"""A second worker joins the bus group mid fan-out: the rebalance completes (no agent waits on
an event Faust dropped from another agent's queue), and each bus still gets every event once."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import redis

from streams.settings import Settings
from tests.integration.bus.helpers import EMAIL_CHANGED, bus_env, email_changed, produce
from tests.integration.bus.nats_reader import delete_stream, stream_count
from tests.integration.streams.helpers import REPO, Worker, committed, end_offsets
from tests.polling import poll

pytestmark = pytest.mark.integration
EVENTS = 3000


def test_a_worker_joining_mid_fan_out_rebalances_and_nothing_is_doubled(
    bus_settings: Settings,
    topics: tuple[str, str],
    schema: str,
    handler_schema: str,
    workers: Callable[..., Worker],
) -> None:
    domain, change = topics
    tag = uuid.uuid4().hex[:8]
    stream, prefix, app_id = f"IT_{tag}", f"it{tag}", f"it-bus-join-{tag}"
    url, r = bus_settings.bus.nats.url, redis.Redis(port=bus_settings.bus.redis.port)
    redis_stream = f"{prefix}:{EMAIL_CHANGED}"
    produce(bus_settings, [email_changed(domain, i) for i in range(EVENTS)])
    # Three agents on one topic (Faust delivers each message to each agent's queue) of different
    # speeds: the handlers' transaction per event lags the bridges, so at the rebalance one agent
    # has taken a message that Faust then clears from the others' queues.
    env = bus_env(
        change, domain,
        nats__enabled="true", nats__stream=stream, nats__subject_prefix=prefix,
        redis__enabled="true", redis__stream_prefix=f"{prefix}:", commit_interval_s="1",
        handler_modules='["tests.integration.bus.notify_handlers"]', handler_schema=handler_schema,
    ) | {"PYTHONPATH": str(REPO)}  # fmt: skip
    try:
        a = workers(app_id, schema, env=env)
        poll(lambda: r.xlen(redis_stream) >= 300, 120, "the first worker fanning out", 0.1)
        b = workers(app_id, schema, env=env)
        ends = end_offsets(bus_settings, domain)

        def done() -> bool:
            assert a.proc.poll() is None, a.text()[-3000:]
            assert b.proc.poll() is None, b.text()[-3000:]
            return committed(bus_settings, f"{app_id}-bus", domain) == ends

        poll(done, 90, "both workers rebalanced and committed the topic")
        assert "wait_empty: Waiting for tasks" not in a.text()
        assert stream_count(url, stream) == EVENTS
        assert r.xlen(redis_stream) == EVENTS
        assert a.stop() == 0
        assert b.stop() == 0
    finally:
        delete_stream(url, stream)
        r.delete(redis_stream, *r.scan_iter(match=f"{redis_stream}:seen:*", count=1000))
        r.close()
