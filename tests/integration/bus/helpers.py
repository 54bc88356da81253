"""Domain events produced onto a private topic, and a bus-only worker's environment."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.codecs import AvroEncoder
from streams.pipeline.publisher import ce_headers
from streams.project.events import DomainEvent
from streams.registry.client import RegistryClient
from streams.settings import Settings
from tests.integration.streams.helpers import Worker, committed, end_offsets
from tests.polling import poll

EMAIL_CHANGED = "dev.changefeed.customers.CustomerEmailChanged"
ORDER_PLACED = "dev.changefeed.orders.OrderPlaced"
# The contracts' subjects on the real domain topics: a private topic reuses their schema ids.
SUBJECTS = {EMAIL_CHANGED: "domain.customers-" + EMAIL_CHANGED, ORDER_PLACED: "domain.orders-" + ORDER_PLACED}


def email_changed(topic: str, n: int) -> DomainEvent:
    return DomainEvent(
        topic=topic,
        record=EMAIL_CHANGED,
        id=str(uuid.uuid4()),
        source="it-bus/public.customers",
        time=datetime.now(UTC),
        subject=str(n),
        version=n,
        position={"system": "POSTGRESQL", "commit_lsn": n, "lsn": n, "tx_id": n},
        data={"customer_id": n, "old_email": None, "new_email": f"c{n}@example.com"},
    )


def order_placed(topic: str, n: int) -> DomainEvent:
    return DomainEvent(
        topic=topic,
        record=ORDER_PLACED,
        id=str(uuid.uuid4()),
        source="it-bus/orders.orders",
        time=datetime.now(UTC),
        subject=str(n),
        version=n,
        position={
            "system": "MARIADB",
            "gtid": "0-1-1",
            "binlog_file": "b.1",
            "binlog_pos": n,
            "binlog_row": 0,
        },
        data={"order_id": n, "customer_id": n, "total_minor": 100 * n, "currency": "EUR", "item_count": 1},
    )


def produce(
    settings: Settings, events: list[DomainEvent], extra: list[tuple[str, bytes, bytes]] | None = None
) -> None:
    """Encode ``events`` as the materializer does (Avro + CloudEvents headers) and send them;
    ``extra`` are raw (key, value) records with no headers, sent after them (poison)."""
    encoders: dict[str, AvroEncoder] = {}
    with RegistryClient(settings.registry.url) as registry:
        for e in events:
            if e.record not in encoders:
                latest = registry.latest(SUBJECTS[e.record])
                assert latest is not None, "run `changefeed schemas register`"
                encoders[e.record] = AvroEncoder.for_source(latest.schema_id, latest.source, registry)
        producer = KafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            acks="all",
            max_request_size=settings.kafka.max_message_bytes,
        )
        try:
            for e in events:
                producer.send(
                    e.topic, encoders[e.record].encode(e.to_avro()), e.subject.encode(), ce_headers(e)
                )
            for topic, key, value in extra or []:
                producer.send(topic, value, key)
            producer.flush()
        finally:
            producer.close()


def bus_env(change_topic: str, domain_topic: str, **bus: str) -> dict[str, str]:
    """A worker whose materializer consumes an empty private topic and whose bus reads ``domain_topic``."""
    env = {
        "CHANGEFEED_WORKER__METRICS_PORT": "0",
        "CHANGEFEED_WORKER__HEAL_CONNECTORS": "false",
        "CHANGEFEED_PIPELINE__TOPICS": json.dumps([change_topic]),
        "CHANGEFEED_PIPELINE__PUBLISH_DOMAIN_EVENTS": "false",
        "CHANGEFEED_BUS__TOPICS": json.dumps([domain_topic]),
        "CHANGEFEED_BUS__BACKOFF_MAX_S": "1",
        "CHANGEFEED_BUS__NATS__ENABLED": "false",
        "CHANGEFEED_BUS__REDIS__ENABLED": "false",
    }
    env.update({f"CHANGEFEED_BUS__{k.upper()}": v for k, v in bus.items()})
    return env


def dead_letters(settings: Settings, topic: str) -> list[dict[str, str]]:
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        out: list[Any] = []
        while any(c.position(tp) < ends[tp] for tp in tps):
            for records in c.poll(timeout_ms=1000).values():
                out += [{k: v.decode() for k, v in r.headers} for r in records]
        return out
    finally:
        c.close()


def run_until_committed(
    settings: Settings,
    workers: Callable[..., Worker],
    app_id: str,
    schema: str,
    env: dict[str, str],
) -> str:
    topic = json.loads(env["CHANGEFEED_BUS__TOPICS"])[0]
    w = workers(app_id, schema, env=env)
    ends = end_offsets(settings, topic)

    def done() -> bool:
        assert w.proc.poll() is None, w.text()[-3000:]
        return committed(settings, f"{app_id}-bus", topic) == ends

    poll(done, 180, f"{app_id}'s bus group committed {topic}")
    assert w.stop() == 0
    stats = re.search(r"bus stopped: (.*)", w.text())
    assert stats is not None, w.text()[-3000:]
    return stats.group(1)


def stat(stats: str, name: str) -> int:
    found = re.search(rf"{re.escape(name)}=(\d+)", stats)
    return int(found.group(1)) if found else 0
