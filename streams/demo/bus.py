"""The demo's event bus: its consumer service and both bridges on, and what they did.

The demo turns on the notifications handler (``streams.demo.notifications``) and the NATS and
Redis bridges for its setup steps (so ``up`` starts their servers) and its workers, unless the
settings already name handler modules or configure a bridge themselves.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime

import nats
import psycopg
import redis
from psycopg import sql
from psycopg.conninfo import make_conninfo

from streams.bus.ledger import LEDGER
from streams.bus.records import RECORDS
from streams.settings import Settings
from streams.sinks import conninfo_from

HANDLERS = "streams.demo.notifications"
# Every contract's event type has its own Redis stream.
EVENT_TYPES = tuple(RECORDS)
# The bus catches up with the domain topics within seconds of the materializer; on a loaded
# 2-core box give it a minute before the summary reports what it did.
CATCH_UP_TIMEOUT_S = 60.0


def demo_bus_env(settings: Settings) -> dict[str, str]:
    """Environment for the demo's `changefeed` subprocesses: handler and both bridges on."""
    b = settings.bus
    env = {"CHANGEFEED_BUS__NATS__ENABLED": "true", "CHANGEFEED_BUS__REDIS__ENABLED": "true"}
    if not b.handler_modules:
        env["CHANGEFEED_BUS__HANDLER_MODULES"] = json.dumps([HANDLERS])
    return env


def with_bus(settings: Settings) -> Settings:
    """``settings`` as the demo's workers see them (both bridges on)."""
    b = settings.bus
    bus = b.model_copy(
        update={
            "nats": b.nats.model_copy(update={"enabled": True}),
            "redis": b.redis.model_copy(update={"enabled": True}),
        }
    )
    return settings.model_copy(update={"bus": bus})


@dataclass(frozen=True)
class BridgeCounts:
    jetstream: int
    redis: int


async def _jetstream_messages(settings: Settings) -> int:
    n = settings.bus.nats
    try:
        nc = await nats.connect(n.url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1)
    except Exception:  # not running: nothing to count
        return 0
    try:
        return int((await nc.jetstream().stream_info(n.stream)).state.messages)
    except Exception:  # no stream yet
        return 0
    finally:
        await nc.close()


def bridge_counts(settings: Settings) -> BridgeCounts:
    """Messages in the JetStream stream and entries in the demo's event types' Redis streams."""
    r = settings.bus.redis
    client = redis.Redis(host=r.host, port=r.port, socket_connect_timeout=2)
    try:
        entries = sum(int(client.xlen(f"{r.stream_prefix}{t}")) for t in EVENT_TYPES)
    except redis.RedisError:
        entries = 0
    finally:
        client.close()
    return BridgeCounts(asyncio.run(_jetstream_messages(settings)), entries)


@dataclass(frozen=True)
class BusSummary:
    handled: int  # events the notifications handlers ran for during the demo
    duplicates: int  # redeliveries their ledger stopped from running again
    notifications: int  # rows in the notifications table now
    jetstream_added: int
    redis_added: int


def handler_conninfo(settings: Settings) -> str:
    return make_conninfo(conninfo_from(settings.sink_postgres), dbname=settings.bus.handler_database)


def bus_summary(settings: Settings, since: datetime, before: BridgeCounts) -> BusSummary:
    after = bridge_counts(settings)
    schema = settings.bus.handler_schema
    ledger = sql.Identifier(schema, LEDGER)
    try:
        with psycopg.connect(handler_conninfo(settings)) as conn:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*) FILTER (WHERE processed_at >= %s), coalesce(sum(duplicates), 0) FROM {}"
                ).format(ledger),
                (since,),
            ).fetchone()
            sent = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "notifications"))
            ).fetchone()
    except psycopg.Error:
        row, sent = None, None
    return BusSummary(
        handled=int(row[0]) if row else 0,
        duplicates=int(row[1]) if row else 0,
        notifications=int(sent[0]) if sent else 0,
        jetstream_added=after.jetstream - before.jetstream,
        redis_added=after.redis - before.redis,
    )


def wait_for_bus(
    settings: Settings, group: str, topics: list[str], timeout_s: float = CATCH_UP_TIMEOUT_S
) -> bool:
    """True once the bus group committed every domain topic to its end (the summary is final)."""
    from kafka import KafkaConsumer, TopicPartition

    deadline = time.monotonic() + timeout_s
    c = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(c.partitions_for_topic(t) or ())]
        while time.monotonic() < deadline:
            ends = c.end_offsets(tps)
            if all((c.committed(tp) or 0) >= ends[tp] for tp in tps):
                return True
            time.sleep(1.0)  # polling interval toward the deadline
        return False
    finally:
        c.close()
