"""Every domain event lands once in its type's Redis stream; a consumer group loses nothing when
one consumer dies with entries pending (another claims them with XAUTOCLAIM)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest
import redis

from streams.settings import Settings
from tests.integration.bus.helpers import (
    EMAIL_CHANGED,
    ORDER_PLACED,
    bus_env,
    email_changed,
    order_placed,
    produce,
)
from tests.integration.streams.helpers import REPO, Worker, committed, end_offsets
from tests.polling import poll

pytestmark = pytest.mark.integration
PER_TYPE = 1000


def test_redis_streams_once_per_event_and_xautoclaim_after_a_consumer_dies(
    bus_settings: Settings, topics: tuple[str, str], schema: str, workers: Callable[..., Worker]
) -> None:
    domain, change = topics
    tag = uuid.uuid4().hex[:8]
    prefix, app_id = f"it{tag}:", f"it-bus-redis-{tag}"
    events = [email_changed(domain, i) for i in range(PER_TYPE)] + [
        order_placed(domain, i) for i in range(PER_TYPE)
    ]
    produce(bus_settings, events)
    r = redis.Redis(host=bus_settings.bus.redis.host, port=bus_settings.bus.redis.port)
    streams = [f"{prefix}{EMAIL_CHANGED}", f"{prefix}{ORDER_PLACED}"]
    try:
        env = bus_env(change, domain, redis__enabled="true", redis__stream_prefix=prefix)
        w = workers(app_id, schema, env=env)
        ends = end_offsets(bus_settings, domain)

        def done() -> bool:
            assert w.proc.poll() is None, w.text()[-3000:]
            return committed(bus_settings, f"{app_id}-bus", domain) == ends

        poll(done, 180, "the bus group committed the domain topic")
        assert w.stop() == 0
        assert [r.xlen(s) for s in streams] == [PER_TYPE, PER_TYPE]
        entries = r.xrange(streams[0], count=1)
        fields = {k.decode(): v for k, v in entries[0][1].items()}
        assert fields["type"] == EMAIL_CHANGED.encode()
        assert fields["data"][0] == 0  # the Confluent-framed Avro bytes as they were on Kafka
        assert {"id", "source", "time", "subject", "specversion", "datacontenttype"} <= set(fields)

        # A second worker in a new group replays everything: the dedupe keys drop every XADD.
        w2 = workers(f"{app_id}-again", schema, env=env)
        poll(lambda: committed(bus_settings, f"{app_id}-again-bus", domain) == ends, 180, "the replay")
        assert w2.stop() == 0
        stats = re.search(r"bus stopped: (.*)", w2.text())
        assert stats is not None
        assert f"bus-redis.duplicates={2 * PER_TYPE}" in stats.group(1)
        assert [r.xlen(s) for s in streams] == [PER_TYPE, PER_TYPE]

        # Consumer group: A reads 400 entries, acks 150, dies with 250 pending; B takes the rest.
        stream, group = streams[0], f"g{tag}"
        r.xgroup_create(stream, group, id="0")
        a = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.bus.redis_consumer",
             str(bus_settings.bus.redis.port), stream, group, "a", "400", "150"],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert a.stdout is not None
        seen_by_a = json.loads(a.stdout.readline())
        a.kill()
        a.wait()
        assert len(seen_by_a["pending"]) == 250
        done_by_b: list[str] = []
        while answer := r.xreadgroup(group, "b", {stream: ">"}, count=200):
            ids = [i for _, entries in answer for i, _ in entries]
            r.xack(stream, group, *ids)
            done_by_b += [i.decode() for i in ids]

        def claimed() -> list[str]:
            # XAUTOCLAIM: B takes over entries idle for 200 ms or more (A's, A being dead).
            _, entries, _ = r.xautoclaim(stream, group, "b", min_idle_time=200, start_id="0-0", count=1000)
            ids = [i for i, _ in entries]
            if ids:
                r.xack(stream, group, *ids)
            return [i.decode() for i in ids]

        claimed_ids = poll(claimed, 30, "XAUTOCLAIM to take over the dead consumer's entries", 0.2)
        assert sorted(claimed_ids) == sorted(seen_by_a["pending"])
        every = [i.decode() for i, _ in r.xrange(stream)]
        assert sorted(seen_by_a["acked"] + claimed_ids + done_by_b) == sorted(every)
        assert r.xpending(stream, group)["pending"] == 0
        print(f"redis: {len(every)} entries, {len(claimed_ids)} claimed from the killed consumer, 0 lost")
    finally:
        r.delete(*streams, *[k for k in r.scan_iter(match=f"{prefix}*:seen:*", count=1000)])
        r.close()
