"""A worker's stop is bounded: SIGTERM while its flush waits on a lock, or while a rebalance
waits for that flush, still ends the process, and never commits Kafka offsets past the sink's.

The flush is held by the partition lock (streams/sinks/flush.py) taken in the test's own session.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from streams.settings import Settings
from streams.sinks.flush import partition_lock_keys
from tests.integration.streams.helpers import Crafter, Worker, committed, end_offsets, stored_offsets
from tests.polling import poll

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[tuple[object, ...]]
START_S = 120.0  # a worker's start on a busy 2-core stack


@contextmanager
def partition_held(settings: Settings, sink: Conn, schema: str, topic: str) -> Iterator[Conn]:
    """Partition 0's flush lock, held by a session of the test until it is released or closed."""
    keys = partition_lock_keys(schema, [(topic, 0)])
    password = settings.sink_postgres.password.get_secret_value()
    with psycopg.connect(sink.info.dsn, password=password, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) k", [keys])
        yield holder


def release(holder: Conn) -> None:
    holder.execute("SELECT pg_advisory_unlock_all()")


def flush_waiting(sink: Conn, w: Worker) -> bool:
    """The worker's sink session waits for an advisory lock (its flush, on the test's lock)."""
    row = sink.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name LIKE %s",
        [f"%-{w.proc.pid}"],
    ).fetchone()
    return bool(row and row[0])


def exits_within(w: Worker, timeout_s: float) -> float:
    """Seconds the worker took to exit; fails (and kills it) past ``timeout_s``."""
    t0 = time.monotonic()
    try:
        w.proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        w.proc.kill()
        w.proc.wait(10)
        tail = w.text()[-4000:]
        raise AssertionError(f"worker still alive {timeout_s:.0f} s after the stop signal:\n{tail}") from None
    return time.monotonic() - t0


def blocked_worker(
    settings: Settings,
    sink: Conn,
    schema: str,
    topic: str,
    crafter: Crafter,
    workers: Callable[..., Worker],
    group: str,
    shutdown_timeout_s: float,
) -> Worker:
    """A worker that committed partitions 1 and 2, and whose flush of partition 0 now waits."""
    env = {
        "CHANGEFEED_WORKER__SHUTDOWN_TIMEOUT_S": str(shutdown_timeout_s),
        "CHANGEFEED_WORKER__METRICS_PORT": "0",
    }
    for cid in range(1, 7):
        crafter.send(topic, *crafter.message(cid, 1000 + cid, "c"), partition=1 + cid % 2)
    w = workers(group, schema, [topic], env)
    ends = {p: o for p, o in end_offsets(settings, topic).items() if o}
    poll(
        lambda: stored_offsets(sink, schema, group, topic) == ends, START_S, "partitions 1 and 2 in the sink"
    )
    for cid in range(7, 10):
        crafter.send(topic, *crafter.message(cid, 1000 + cid, "c"), partition=0)
    poll(lambda: flush_waiting(sink, w), 60, "the flush of partition 0 to wait on the test's lock")
    return w


def nothing_committed_past_the_sink(
    settings: Settings, sink: Conn, schema: str, group: str, topic: str
) -> None:
    stored = stored_offsets(sink, schema, group, topic)
    for part, offset in committed(settings, group, topic).items():
        assert offset <= stored.get(part, 0), f"partition {part}: Kafka {offset}, sink {stored.get(part)}"


def test_sigterm_abandons_a_flush_blocked_on_a_lock_within_the_shutdown_timeout(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    group = f"it-stop-{uuid.uuid4().hex[:8]}"
    with partition_held(settings, sink, schema, topic):
        w = blocked_worker(settings, sink, schema, topic, crafter, workers, group, shutdown_timeout_s=8)
        w.proc.send_signal(signal.SIGTERM)
        took = exits_within(w, 8 + 5)
        assert w.proc.returncode == 0, w.text()[-3000:]
        assert "abandoning it" in w.text()
        # The abandoned batch rolled back: partition 0 has no sink offset, so none in Kafka either.
        assert 0 not in stored_offsets(sink, schema, group, topic)
        nothing_committed_past_the_sink(settings, sink, schema, group, topic)
    print(f"stopped in {took:.1f} s with its flush blocked")


def test_sigterm_during_a_rebalance_that_waits_for_the_batch_does_not_deadlock(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    """The CI hang: the stop took the pipeline lock, then stopped the consumer, whose rejoin (begun
    after the stop) waited in the revoke listener for that same lock. Here: SIGTERM while the flush
    waits, then a second member joins (the first's revoke now queues behind the stop), then the
    flush is let go; the batch finishes normally and the worker exits well before the bound."""
    group = f"it-stop-{uuid.uuid4().hex[:8]}"
    with partition_held(settings, sink, schema, topic) as holder:
        w = blocked_worker(settings, sink, schema, topic, crafter, workers, group, shutdown_timeout_s=120)
        w.proc.send_signal(signal.SIGTERM)
        poll(lambda: "Signal received" in w.text(), 30, "the worker to take the signal")
        workers(group, schema, [topic], {"CHANGEFEED_WORKER__METRICS_PORT": "0"})
        poll(
            lambda: w.text().count("Revoking previously assigned") >= 2,
            60,
            "the rebalance to reach the worker",
        )
        release(holder)
        took = exits_within(w, 30)
    assert w.proc.returncode == 0, w.text()[-3000:]
    assert "abandoning it" not in w.text()
    # The batch in flight was finished, not abandoned: partition 0 has a sink offset now (the rest
    # of its records may be the second member's, which owns the partition after the stop).
    assert stored_offsets(sink, schema, group, topic).get(0, 0) >= 1
    nothing_committed_past_the_sink(settings, sink, schema, group, topic)
    print(f"stopped {took:.1f} s after its flush was let go")


def test_a_second_signal_exits_at_once(
    settings: Settings, sink: Conn, schema: str, topic: str, crafter: Crafter, workers: Callable[..., Worker]
) -> None:
    group = f"it-stop-{uuid.uuid4().hex[:8]}"
    with partition_held(settings, sink, schema, topic):
        w = blocked_worker(settings, sink, schema, topic, crafter, workers, group, shutdown_timeout_s=120)
        w.proc.send_signal(signal.SIGTERM)
        poll(lambda: "Signal received" in w.text(), 30, "the worker to take the first signal")
        w.proc.send_signal(signal.SIGINT)
        exits_within(w, 5)
        assert w.proc.returncode == 128 + signal.SIGINT
        assert 0 not in stored_offsets(sink, schema, group, topic)
        nothing_committed_past_the_sink(settings, sink, schema, group, topic)
