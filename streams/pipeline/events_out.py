"""Domain events out through librdkafka: produce a whole batch, then one wait for every ack.

aiokafka's ``send`` is a coroutine per record (metadata wait, partitioner, accumulator, all in
Python) and its acks are one future each: per domain event that was the worker's largest cost
when publishing. ``confluent_kafka.Producer.produce`` queues a record in C without a round trip
through the event loop; ``flush`` then waits (in a thread, off the event loop) until the broker
acked every queued record. The loop calls ``publish`` before the sink transaction, so the batch's
offsets are stored only once all its domain events are acked.

The producer is idempotent with ``acks=all`` (a librdkafka-internal retry does not duplicate),
and keys go through ``murmur2_random``, the partitioner aiokafka and the Java clients use: one
subject's events land on the same partition as before the switch. A failed publish is retried
whole by the loop (at least once: consumers de-duplicate by ``ce_id``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, cast

from confluent_kafka import KafkaError, Producer

from streams.errors import TransientError
from streams.pipeline.publisher import Outgoing, publish

log = logging.getLogger(__name__)
# The wait for a batch's acks; a broker away longer fails the publish, and the loop retries it.
ACK_TIMEOUT_S = 30.0
_Headers = list[tuple[str, str | bytes | None]]


class EventProducer(Protocol):
    async def publish(self, events: Sequence[Outgoing]) -> None:
        """Return once the broker acked every event; raise if any was not."""

    async def close(self) -> None: ...


class LibrdkafkaEvents:
    def __init__(self, config: dict[str, Any], ack_timeout_s: float = ACK_TIMEOUT_S) -> None:
        # A delivery report only for a failed event: flush's count of events still queued and the
        # failures' reports say all a publish needs, and a Python callback per acked event (from
        # flush's thread, taking the GIL each time) cost ~0.5-1 µs of CPU per event.
        self.config = {**config, "delivery.report.only.error": True}
        self.ack_timeout_s = ack_timeout_s
        self._producer = Producer(self.config)

    async def publish(self, events: Sequence[Outgoing]) -> None:
        failed: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: object) -> None:  # runs in flush's thread
            if err is not None:
                failed.append(err)

        p = self._producer
        for o in events:
            headers = cast(_Headers, o.headers)  # read only: list is invariant, not the data
            while True:
                try:
                    p.produce(o.topic, o.value, o.key, headers=headers, on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let the acks drain it
                    await asyncio.to_thread(p.poll, 0.1)
        left = await asyncio.to_thread(p.flush, self.ack_timeout_s)
        if failed and any(e.fatal() for e in failed):
            # An idempotent producer's fatal error leaves it unusable: start a new one.
            log.error("domain-event producer failed fatally (%s); recreating it", failed[0])
            self._producer = Producer(self.config)
        if left or failed:
            reason = f"{failed[0].name()}: {failed[0].str()}" if failed else "ack timeout"
            msg = f"{len(failed) + left} of {len(events)} domain events not acked ({reason})"
            raise TransientError(msg)

    async def close(self) -> None:
        left = await asyncio.to_thread(self._producer.flush, self.ack_timeout_s)
        if left:
            log.warning("%d domain events still queued at stop (their batch was not committed)", left)


class AiokafkaEvents:
    """Through an aiokafka producer, one awaited send per event (tests' fakes, and the fallback)."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    async def publish(self, events: Sequence[Outgoing]) -> None:
        futures = await publish(self.producer, events)
        await asyncio.gather(*[f for f in futures if isinstance(f, Awaitable)])

    async def close(self) -> None:
        return None
