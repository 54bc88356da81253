"""A worker's bounded stop: finish or abandon the batch in flight, then leave the group and close.

Why bounded, and why in this order:

- The batch in flight gets ``batch_s`` to finish. A flush can wait much longer than that (on a
  lock another session holds, on a sink or broker that is away), so after it the loop's task is
  cancelled: the sink transaction rolls back (psycopg cancels the statement), and since the
  offsets live in that transaction, the next owner re-reads exactly the abandoned records. The
  Kafka commit only ever follows a sink commit, so nothing is committed past the sink.
- The consumer is stopped with *no* pipeline lock held. aiokafka's ``stop`` waits for its
  coordination task, and a rejoin that task has begun (a worker resumed after a pause, or a
  member that left at the same moment) calls ``Rebalance.on_partitions_revoked``, which takes the
  pipeline lock: holding it around ``stop`` deadlocked the worker for good.
- Every client close is bounded too (a JoinGroup waits for the group's other members; a producer
  waits for acks); the group's session timeout covers a member that could not say goodbye.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from streams.pipeline.loop import Pipeline

log = logging.getLogger(__name__)
# After the cancel, psycopg waits up to 5 s for the server to end the statement (then closes).
ABANDON_WAIT_S = 6.0
# The least any close step gets, even when the batch used the whole budget.
MIN_STEP_S = 1.0


async def stop_pipeline(p: Pipeline, running: asyncio.Task[Any] | None, timeout_s: float) -> None:
    """Stop ``p`` within about ``timeout_s``: half for the batch in flight, the rest for closing."""
    deadline = time.monotonic() + timeout_s
    p.stopping.set()
    p.metrics.probes.stopping = True
    if running is not None and not running.done():
        await abandon_after(running, timeout_s / 2)
    steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("consumer (leave the group)", p.consumer.stop),
        ("domain-event producer", p.events.close),
        ("producer", p.producer.stop),
        ("sink", p.sink.close),
    ]
    for what, close in steps:
        await bounded(what, close(), max(MIN_STEP_S, deadline - time.monotonic()))


async def abandon_after(running: asyncio.Task[Any], wait_s: float) -> None:
    """Let ``running`` (the poll loop) end by itself within ``wait_s``, else cancel it."""
    done, _ = await asyncio.wait({running}, timeout=wait_s)
    if done:
        return
    log.warning(
        "the batch in flight did not finish within %.0f s of the stop; abandoning it"
        " (its sink transaction rolls back, the partitions' next owner re-reads it)",
        wait_s,
    )
    running.cancel()
    done, _ = await asyncio.wait({running}, timeout=ABANDON_WAIT_S)
    if not done:
        log.error("the abandoned batch did not end within %.0f s of its cancel", ABANDON_WAIT_S)


async def bounded(what: str, step: Awaitable[Any], timeout_s: float) -> None:
    """Await one close step for at most ``timeout_s``; a failure or timeout is logged, not raised."""
    try:
        await asyncio.wait_for(step, timeout_s)
    except TimeoutError:
        log.warning("stop: closing the %s took over %.1f s; gave up on it", what, timeout_s)
    except Exception as exc:  # the worker is going away either way; say what was left undone
        log.warning("stop: closing the %s failed: %s: %s", what, type(exc).__name__, exc)
