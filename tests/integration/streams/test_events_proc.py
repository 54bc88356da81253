"""Domain events through the publisher process: the bytes in-process encoding makes, every event
acked before ``publish`` returns, poison named per record, a killed child replaced and the batch
sent again."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streams.errors import TransformError, TransientError
from streams.pipeline.clients import events_producer_config
from streams.pipeline.events_proc import CHUNK, ProcessEvents
from streams.pipeline.publisher import Encoders, Outgoing
from streams.project.events import DomainEvent, domain_event
from streams.registry.client import RegistryClient
from streams.registry.schema import SchemaSource
from streams.settings import Settings

pytestmark = pytest.mark.integration
RECORD = "it.events.Happened"
SCHEMA = {
    "type": "record",
    "name": "Happened",
    "namespace": "it.events",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "type", "type": "string"},
        {"name": "source", "type": "string"},
        {"name": "time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "subject", "type": "string"},
        {"name": "version", "type": "long"},
        {"name": "position", "type": {"type": "map", "values": "string"}},
        {
            "name": "data",
            "type": {"type": "record", "name": "Data", "fields": [{"name": "n", "type": "long"}]},
        },
    ],
}


@pytest.fixture
def topic(settings: Settings) -> Iterator[str]:
    name = f"it-events-proc-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    with RegistryClient(settings.registry.url) as registry:
        registry.register(f"{name}-{RECORD}", SchemaSource(json.dumps(SCHEMA)))
    yield name
    admin.delete_topics([name])


def event(topic: str, n: Any) -> DomainEvent:
    when = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    return domain_event(topic, RECORD, f"id-{n}", "it", when, f"s{n}", 1, {"system": "IT"}, {"n": n})


def publisher(settings: Settings) -> ProcessEvents:
    config = events_producer_config(settings.kafka, settings.worker)
    return ProcessEvents(config, settings.registry.url, settings.kafka.max_message_bytes, ack_timeout_s=20)


def consumed(settings: Settings, topic: str, at_least: int) -> list[tuple[bytes, bytes, dict[str, bytes]]]:
    c = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": topic})
    c.assign([TopicPartition(topic, 0, 0)])
    got: list[tuple[bytes, bytes, dict[str, bytes]]] = []
    try:
        while len(got) < at_least:
            msgs = c.consume(500, timeout=10)
            assert msgs, f"only {len(got)} of {at_least} events on {topic}"
            got += [(m.key() or b"", m.value() or b"", dict(m.headers() or [])) for m in msgs]
    finally:
        c.close()
    return got


async def test_the_child_publishes_what_in_process_encoding_would_and_names_the_poison(
    settings: Settings, topic: str
) -> None:
    n = 2 * CHUNK + 10  # sent in three messages while "the batch is handled"
    events = publisher(settings)
    try:
        events.begin()
        for i in range(n):
            # Record 7's second event does not fit (a string for a long): the record is poison,
            # its first event is not published either.
            bad = [event(topic, i), event(topic, "seven")] if i == 7 else [event(topic, i)]
            events.stage((topic, 0, i), bad)
        refused = await events.publish()  # returns once every other event is acked
    finally:
        await events.close()
    ((origin, exc),) = refused
    assert origin == (topic, 0, 7)
    assert isinstance(exc, TransformError)
    assert f"{topic}[0]@7" in str(exc)

    with RegistryClient(settings.registry.url) as registry:
        encoders = Encoders(registry)
        expected = [Outgoing.of(event(topic, i), encoders) for i in range(n) if i != 7]
    got = consumed(settings, topic, len(expected))
    assert len(got) == len(expected)
    assert [(k, v) for k, v, _ in got] == [(o.key, o.value) for o in expected]
    assert [h["ce_id"] for _, _, h in got] == [dict(o.headers)["ce_id"] for o in expected]


async def test_a_killed_child_fails_the_publish_then_a_new_one_sends_the_whole_batch(
    settings: Settings, topic: str
) -> None:
    events = publisher(settings)
    try:
        events.begin()
        for i in range(CHUNK + 5):
            events.stage((topic, 0, i), [event(topic, i)])
        assert events._proc is not None  # started by the first chunk
        assert events._proc.pid is not None
        os.kill(events._proc.pid, signal.SIGKILL)
        events._proc.join(10)
        with pytest.raises(TransientError, match="publisher process lost"):
            await events.publish()
        assert await events.publish() == []  # the loop's retry: a new child, everything again
        assert events.restarts == 1
    finally:
        await events.close()
    got = consumed(settings, topic, CHUNK + 5)
    assert {k for k, _, _ in got} == {f"s{i}".encode() for i in range(CHUNK + 5)}  # at least once
