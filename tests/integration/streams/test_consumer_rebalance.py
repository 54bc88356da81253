"""Both consumers ([worker] consumer): every assignment starts at the sink's offsets, real stack.

A partition's sink offset is the truth; Kafka's committed offset is only an optimization. Here
the sink holds offsets the group never committed (as after a crash between the sink commit and
the Kafka commit), and the record before each is poison: a worker that read from the
committed/earliest position even once, before its seek took effect, would dead-letter it (the
sink's own replay filter would hide a re-read good record, so only poison shows a re-read).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest

from streams.settings import Settings
from tests.integration.streams.helpers import Crafter, Worker, committed, end_offsets, stored_offsets
from tests.polling import poll

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[tuple[object, ...]]
PARTITIONS = 3  # the topic fixture's


def caught_up(settings: Settings, sink: Conn, schema: str, group: str, topic: str) -> bool:
    ends = {p: o for p, o in end_offsets(settings, topic).items() if o}
    return stored_offsets(sink, schema, group, topic) == ends


# aiokafka starts fetching a newly assigned partition from the committed/earliest offset while the
# listener still loads the sink's offset, and the loop's getmany is not held back meanwhile: the
# records before the seek can reach the loop (a race: most runs here, not all). The sink's replay
# filter keeps the rows right, but such a poison record is dead-lettered again and a good one's
# domain events are published again.
AIOKAFKA_RACE = pytest.mark.xfail(
    strict=False, reason="a race: aiokafka may return records fetched before the listener's seek"
)


@pytest.mark.parametrize("consumer", ["librdkafka", pytest.param("aiokafka", marks=AIOKAFKA_RACE)])
def test_a_rebalance_between_two_workers_starts_each_partition_at_the_sinks_offset(
    settings: Settings,
    sink: Conn,
    schema: str,
    topic: str,
    crafter: Crafter,
    workers: Callable[..., Worker],
    consumer: str,
) -> None:
    group = f"it-{uuid.uuid4().hex[:8]}"
    env = {"CHANGEFEED_WORKER__CONSUMER": consumer}
    held = f"assigned {topic}["
    # A first run of the group sets up the sink schema; the topic is empty, nothing is flushed.
    setup = workers(group, schema, [topic], env)
    poll(lambda: held in setup.text(), 120, "the group's first worker to hold partitions")
    assert setup.stop() == 0
    # Per partition: poison at offset 0, a good record at 1, and the sink says 0 is done (a
    # seek beyond the log end would be reset to earliest, so the records come first).
    for p in range(PARTITIONS):
        key, _ = crafter.message(100 + p, 1000, "c")
        done = crafter.send(topic, key, b"\x07 not avro", partition=p)
        kept = crafter.send(topic, *crafter.message(200 + p, 1000, "c"), partition=p)
        assert (done, kept) == (0, 1)
        sink.execute(
            f'INSERT INTO "{schema}".changefeed_offsets (consumer_group, topic, partition, next_offset)'
            " VALUES (%s, %s, %s, 1)",
            (group, topic, p),
        )
    assert committed(settings, group, topic) == {}  # only the sink knows offset 0 is done
    # The first to join takes every partition; the second's join rebalances (eager: all revoked,
    # then split), and every assignment of either seeks.
    a = workers(group, schema, [topic], env)
    poll(lambda: held in a.text(), 120, "the first worker to hold partitions")
    b = workers(group, schema, [topic], env)
    poll(lambda: held in b.text(), 120, "the second worker to hold partitions after the rebalance")
    poll(lambda: caught_up(settings, sink, schema, group, topic), 120, "the workers to catch up")
    assert "seek to sink offset" in b.text()
    got = sink.execute(f'SELECT customer_id FROM "{schema}".customer_directory ORDER BY 1').fetchall()
    assert [r[0] for r in got] == [200 + p for p in range(PARTITIONS)]
    assert sum(end_offsets(settings, f"{topic}.dlq").values()) == 0, "a record before a sink offset was read"
    assert a.stop() == 0
    assert b.stop() == 0


def test_one_group_may_mix_both_consumers(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    """Both use the eager "roundrobin" assignor: a deployment can switch one worker at a time (a
    cooperative librdkafka worker would be refused by the group: inconsistent protocols)."""
    group = f"it-{uuid.uuid4().hex[:8]}"
    held = f"assigned {topic}["
    a = workers(group, schema, [topic], {"CHANGEFEED_WORKER__CONSUMER": "aiokafka"})
    poll(lambda: held in a.text(), 120, "the aiokafka worker to hold partitions")
    b = workers(group, schema, [topic], {"CHANGEFEED_WORKER__CONSUMER": "librdkafka"})
    poll(lambda: held in b.text(), 120, "the librdkafka worker to join and hold partitions")
    for cid in range(1, 31):
        crafter.send(topic, *crafter.message(cid, 1000 + cid, "c"))
    poll(lambda: caught_up(settings, sink, schema, group, topic), 120, "the mixed group to catch up")
    got = sink.execute(f'SELECT customer_id FROM "{schema}".customer_directory ORDER BY 1').fetchall()
    assert [r[0] for r in got] == list(range(1, 31))
    assert a.stop() == 0
    assert b.stop() == 0
