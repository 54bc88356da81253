"""The event bus's bridge throughput: domain events/s from Kafka to JetStream and to Redis.

``make bench-bus`` (the local stack, with both bridges' servers started): N domain events on a
private topic, then per bridge a real ``changefeed worker`` whose bus runs only that bridge, timed
from the worker's start to its group's commit of the whole topic (startup included, so the
figure is conservative); bench/results/bus-<date>.json. Private topic, streams and groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import nats
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from streams.codecs import AvroEncoder
from streams.pipeline.publisher import ce_headers
from streams.project.events import DomainEvent
from streams.registry.client import RegistryClient
from streams.settings import Settings, load_settings
from streams.stack import supervisor

EVENT = "dev.changefeed.customers.CustomerEmailChanged"
RESULTS = Path(__file__).resolve().parent / "results"


def _events(topic: str, n: int) -> list[DomainEvent]:
    now = datetime.now(UTC)
    return [
        DomainEvent(topic, EVENT, str(uuid.uuid4()), "bench/public.customers", now, str(i), i,
                    {"system": "POSTGRESQL", "commit_lsn": i, "lsn": i, "tx_id": i},
                    {"customer_id": i, "old_email": None, "new_email": f"b{i}@example.com"})
        for i in range(n)
    ]  # fmt: skip


def _produce(s: Settings, events: list[DomainEvent]) -> None:
    with RegistryClient(s.registry.url) as registry:
        latest = registry.latest(f"domain.customers-{EVENT}")
        assert latest is not None, "run `changefeed schemas register` first"
        enc = AvroEncoder.for_source(latest.schema_id, latest.source, registry)
    p = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, linger_ms=20)
    for e in events:
        p.send(e.topic, enc.encode(e.to_avro()), e.subject.encode(), ce_headers(e))
    p.flush()
    p.close()


def _committed(s: Settings, group: str, topic: str) -> int:
    c = KafkaConsumer(bootstrap_servers=s.kafka.bootstrap_servers, group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        return sum(c.committed(tp) or 0 for tp in tps)
    finally:
        c.close()


def _run_bridge(s: Settings, bridge: str, topic: str, change: str, n: int, tag: str) -> tuple[float, float]:
    """(events/s from the worker's start, events/s from its first commit)."""
    app_id = f"bench-bus-{bridge}-{tag}"
    env = {
        **os.environ,
        "CHANGEFEED_WORKER__APP_ID": app_id,
        "CHANGEFEED_WORKER__METRICS_PORT": "0",
        "CHANGEFEED_WORKER__HEAL_CONNECTORS": "false",
        "CHANGEFEED_PIPELINE__TOPICS": json.dumps([change]),
        "CHANGEFEED_PIPELINE__PUBLISH_DOMAIN_EVENTS": "false",
        "CHANGEFEED_BUS__TOPICS": json.dumps([topic]),
        "CHANGEFEED_BUS__NATS__ENABLED": str(bridge == "nats").lower(),
        "CHANGEFEED_BUS__NATS__STREAM": f"BENCH_{tag}",
        "CHANGEFEED_BUS__NATS__SUBJECT_PREFIX": f"bench{tag}",
        "CHANGEFEED_BUS__REDIS__ENABLED": str(bridge == "redis").lower(),
        "CHANGEFEED_BUS__REDIS__STREAM_PREFIX": f"bench{tag}:",
        "CHANGEFEED_BUS__COMMIT_INTERVAL_S": "0.5",
    }
    started = time.monotonic()
    worker = subprocess.Popen([sys.executable, "-m", "streams", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    first: tuple[float, int] | None = None  # (when, committed) at the first commit seen
    try:
        while (done := _committed(s, f"{app_id}-bus", topic)) < n:
            if worker.poll() is not None or time.monotonic() - started > 600:
                msg = f"the {bridge} bench worker exited or stalled"
                raise RuntimeError(msg)
            if first is None and done > 0:
                first = (time.monotonic(), done)
            time.sleep(0.2)  # polling interval
        end = time.monotonic()
        # Steady state: from the first commit on (the worker's start-up and group join excluded).
        steady = (n - first[1]) / (end - first[0]) if first is not None and end > first[0] else 0.0
        return n / (end - started), steady
    finally:
        worker.terminate()
        worker.wait(30)


def _clean(s: Settings, tag: str) -> None:
    """Drop the bench's JetStream stream and Redis streams (and their dedupe keys)."""

    async def drop_stream() -> None:
        nc = await nats.connect(s.bus.nats.url, connect_timeout=2)
        try:
            await nc.jetstream().delete_stream(f"BENCH_{tag}")
        finally:
            await nc.close()

    with contextlib.suppress(Exception):
        asyncio.run(drop_stream())
    r = redis.Redis(host=s.bus.redis.host, port=s.bus.redis.port)
    keys = list(r.scan_iter(match=f"bench{tag}:*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    base = load_settings()
    on = {"enabled": True}
    bus = base.bus.model_copy(
        update={"nats": base.bus.nats.model_copy(update=on), "redis": base.bus.redis.model_copy(update=on)}
    )
    s = base.model_copy(update={"bus": bus})
    supervisor.up(s, print)
    tag = uuid.uuid4().hex[:8]
    topic, change = f"bench{tag}.domain.customers", f"bench{tag}.public.customers"
    admin = KafkaAdminClient(bootstrap_servers=s.kafka.bootstrap_servers)
    admin.create_topics([NewTopic(topic, 3, 1), NewTopic(change, 1, 1)])
    try:
        _produce(s, _events(topic, n))
        runs = {b: _run_bridge(s, b, topic, change, n, tag) for b in ("nats", "redis")}
    finally:
        admin.delete_topics([t for t in admin.list_topics() if t.startswith(f"bench{tag}.")])
        admin.close()
        _clean(s, tag)
    out = {
        "events": n,
        "events_per_s_incl_startup": {b: round(r[0], 1) for b, r in runs.items()},
        "events_per_s_steady": {b: round(r[1], 1) for b, r in runs.items()},
        "load": os.getloadavg(),
        "at": datetime.now(UTC).isoformat(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"bus-{datetime.now(UTC).strftime('%Y-%m-%dT%H%M')}.json").write_text(
        json.dumps(out, indent=2)
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
