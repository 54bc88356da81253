"""The bounded stop with in-memory fakes: a batch that never ends is abandoned, and the consumer's
stop may run the revoke listener (as aiokafka's does during a rejoin) without deadlocking."""

from __future__ import annotations

import asyncio
import time

from streams.pipeline import Rebalance
from streams.pipeline.shutdown import stop_pipeline
from tests.unit.pipeline.test_loop import FakeConsumer, pipeline


class RejoiningConsumer(FakeConsumer):
    """``stop`` waits for a rejoin already begun, whose first step is the revoke callback."""

    def __init__(self) -> None:
        super().__init__()
        self.listener: Rebalance | None = None
        self.stopped = False

    async def stop(self) -> None:
        assert self.listener is not None
        await self.listener.on_partitions_revoked([])
        self.stopped = True


class Closable:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def stop(self) -> None:
        self.closed = True


def stoppable() -> tuple[object, RejoiningConsumer, Closable]:
    p, sink = pipeline([], {})
    consumer = RejoiningConsumer()
    consumer.listener = Rebalance(p)
    closable = Closable()
    p.consumer, p.producer, p.events = consumer, closable, closable
    sink.close = closable.close  # type: ignore[attr-defined]
    return p, consumer, closable


async def test_a_batch_that_never_ends_is_abandoned_within_the_budget() -> None:
    p, consumer, closable = stoppable()

    async def stuck_batch() -> None:
        async with p.lock:  # type: ignore[attr-defined]  # as run() holds it around a batch
            await asyncio.Event().wait()  # a flush waiting on a lock nobody releases

    running = asyncio.create_task(stuck_batch())
    await asyncio.sleep(0)  # the batch takes the lock first
    t0 = time.monotonic()
    await asyncio.wait_for(stop_pipeline(p, running, 0.4), 5)  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 2
    assert running.cancelled()
    assert consumer.stopped  # the revoke listener got the lock the abandoned batch gave up
    assert closable.closed


async def test_a_loop_that_ends_by_itself_is_not_cancelled() -> None:
    p, consumer, _ = stoppable()

    async def loop() -> str:
        await p.stopping.wait()  # type: ignore[attr-defined]  # run() checks it between batches
        return "ended"

    running = asyncio.create_task(loop())
    await asyncio.wait_for(stop_pipeline(p, running, 10), 5)  # type: ignore[arg-type]
    assert running.result() == "ended"
    assert consumer.stopped
