"""Replays, stale events, deletes, poison and two workers — on a private topic, real stack."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer

from streams.codecs.wire import frame
from streams.pipeline import parse_headers
from streams.settings import Settings
from tests.integration.streams.helpers import Crafter, Worker, committed, end_offsets, stored_offsets
from tests.polling import poll

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[tuple[object, ...]]


def fill(crafter: Crafter, topic: str, customers: int = 30, base: int = 1000) -> None:
    for cid in range(1, customers + 1):
        for step in range(3):
            crafter.send(topic, *crafter.message(cid, base + cid * 10 + step, "c" if step == 0 else "u"))


def caught_up(settings: Settings, sink: Conn, schema: str, group: str, topic: str) -> bool:
    ends = {p: o for p, o in end_offsets(settings, topic).items() if o}
    return stored_offsets(sink, schema, group, topic) == ends


def rows(sink: Conn, schema: str) -> list[tuple[Any, ...]]:
    q = f'SELECT customer_id, email, _cf_position FROM "{schema}".customer_directory ORDER BY 1'
    return sink.execute(q).fetchall()


def versions(sink: Conn, schema: str) -> list[tuple[Any, ...]]:
    q = f'SELECT customer_id, xmin::text FROM "{schema}".customer_directory ORDER BY 1'
    return sink.execute(q).fetchall()


def test_replay_from_zero_changes_nothing_and_offsets_match_after_clean_stop(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    fill(crafter, topic)
    first, second = f"it-{uuid.uuid4().hex[:8]}", f"it-{uuid.uuid4().hex[:8]}"
    w = workers(first, schema, [topic])
    poll(lambda: caught_up(settings, sink, schema, first, topic), 90, "first worker to catch up")
    assert w.stop() == 0
    ends = {p: o for p, o in end_offsets(settings, topic).items() if o}
    assert stored_offsets(sink, schema, first, topic) == ends == committed(settings, first, topic)
    assert len(rows(sink, schema)) == 30
    before = versions(sink, schema)
    # A new group replays the whole topic from offset 0 into the same tables.
    workers(second, schema, [topic])
    poll(lambda: caught_up(settings, sink, schema, second, topic), 90, "replaying worker to catch up")
    assert versions(sink, schema) == before  # not one row rewritten (same xmin)
    # Restarting the first group resumes from the sink's offsets: nothing is re-read.
    w2 = workers(first, schema, [topic])
    poll(lambda: "seek to sink offset" in w2.text(), 60, "the resumed worker to seek")
    assert w2.stop() == 0


def test_stale_event_is_ledgered_and_a_late_upsert_cannot_resurrect(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    group = f"it-{uuid.uuid4().hex[:8]}"
    crafter.send(topic, *crafter.message(1, 500, "c", "new@it.test"))
    crafter.send(topic, *crafter.message(2, 500, "c"))
    crafter.send(topic, *crafter.message(2, 600, "d"))
    workers(group, schema, [topic])
    poll(lambda: caught_up(settings, sink, schema, group, topic), 90, "worker to apply the newer events")
    # Injected after the newer events were applied (inside one batch they'd just be superseded).
    crafter.send(topic, *crafter.message(1, 400, "u", "stale@it.test"))
    crafter.send(topic, *crafter.message(2, 550, "u", "zombie@it.test"))  # late upsert after the delete
    poll(lambda: caught_up(settings, sink, schema, group, topic), 90, "worker to see the stale events")
    assert [(r[0], r[1]) for r in rows(sink, schema)] == [(1, "new@it.test")]
    ledger = sink.execute(
        f"SELECT row_key->>'customer_id', reason FROM \"{schema}\".changefeed_conflicts ORDER BY 1"
    ).fetchall()
    assert ledger == [("1", "stale"), ("2", "stale")]


def test_poison_goes_to_the_dlq_with_headers_and_the_rest_flows(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    group = f"it-{uuid.uuid4().hex[:8]}"
    key, good = crafter.message(7, 700, "c")
    poison = {
        "truncated": good[: len(good) // 2],
        "unknown id": frame(987_654, good[5:]),
        "magic": b"\x07" + good[1:],
        "json": b'{"op": "c", "after": {"id": 7}}',
    }
    for value in poison.values():
        crafter.send(topic, key, value)
    crafter.send(topic, key, good)
    workers(group, schema, [topic])
    poll(lambda: caught_up(settings, sink, schema, group, topic), 90, "worker to catch up")
    assert [r[0] for r in rows(sink, schema)] == [7]
    c = KafkaConsumer(f"{topic}.dlq", bootstrap_servers=settings.kafka.bootstrap_servers,
                      auto_offset_reset="earliest", consumer_timeout_ms=5000)  # fmt: skip
    letters = [parse_headers(list(r.headers)) for r in c]
    c.close()
    assert sorted(h["error_class"] for h in letters) == sorted(
        ["AvroBodyError", "UnknownSchemaError", "WireFormatError", "WireFormatError"]
    )
    for h in letters:
        assert h["source_topic"] == topic
        assert h["source_offset"].isdigit()
        assert h["source_timestamp"].isdigit()


def test_two_workers_split_partitions_and_converge(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    group = f"it-{uuid.uuid4().hex[:8]}"
    a, b = workers(group, schema, [topic]), workers(group, schema, [topic])
    # Fill only once both hold partitions: the first to join takes all three, and records
    # produced before the second joins would be applied by one worker alone.
    held = f"assigned {topic}["
    poll(lambda: held in a.text() and held in b.text(), 120, "both workers to hold partitions")
    fill(crafter, topic, customers=60)
    poll(lambda: caught_up(settings, sink, schema, group, topic), 120, "two workers to catch up")
    got = rows(sink, schema)
    assert len(got) == 60
    assert all(email == f"c{cid}-{1000 + cid * 10 + 2}@it.test" for cid, email, _ in got)


@pytest.mark.slow
def test_a_worker_started_before_its_topic_exists_consumes_it_once_created(
    settings: Settings, sink: Conn, schema: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    """A fresh stack: Connect creates a change topic with its first record, after workers start."""
    from kafka.admin import KafkaAdminClient, NewTopic

    late = f"late{uuid.uuid4().hex[:8]}.public.customers"
    group = f"it-{uuid.uuid4().hex[:8]}"
    w = workers(group, schema, [late])
    table = f"{schema}.customer_directory"
    poll(lambda: sink.execute("SELECT to_regclass(%s)", [table]).fetchone()[0], 60, "the worker's sink setup")
    # Longer than aiokafka's 40 s metadata wait, after which a list subscription fails the start.
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        assert w.proc.poll() is None, w.text()[-2000:]
        time.sleep(1)  # observing the worker stay up, not waiting for an event
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(late, 1, 1)])
        fill(crafter, late, customers=5)
        poll(lambda: caught_up(settings, sink, schema, group, late), 90, "the worker to find the new topic")
        assert len(rows(sink, schema)) == 5
        assert w.proc.poll() is None, w.text()[-2000:]  # a list subscription crashed here
    finally:
        admin.delete_topics([t for t in admin.list_topics() if t.startswith(late)])
        admin.close()
