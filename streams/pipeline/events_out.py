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


class EventSender(Protocol):
    """Sends encoded domain events: returns once the broker acked every one, raises if any was not."""

    async def publish(self, events: Sequence[Outgoing]) -> None: ...

    async def close(self) -> None: ...


class LibrdkafkaEvents:
    def __init__(self, config: dict[str, Any], ack_timeout_s: float = ACK_TIMEOUT_S) -> None:
        self.queue = ProducerQueue(config)
        self.ack_timeout_s = ack_timeout_s

    async def publish(self, events: Sequence[Outgoing]) -> None:
        q = self.queue
        for o in events:
            while not q.produce(o):  # the local queue is full: let the acks drain it
                await asyncio.to_thread(q.poll, 0.1)
        left = await asyncio.to_thread(q.flush, self.ack_timeout_s)
        if problem := q.outcome(left, len(events)):
            raise TransientError(problem)

    async def close(self) -> None:
        left = await asyncio.to_thread(self.queue.flush, self.ack_timeout_s)
        if left:
            log.warning("%d domain events still queued at stop (their batch was not committed)", left)


class ProducerQueue:
    """librdkafka's producer as a batch's queue: produce without blocking, flush, then one verdict.

    Shared by ``LibrdkafkaEvents`` (in the worker's event loop) and the publisher process
    (``events_proc``, synchronous): the same producer settings and the same failure rules.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        # A delivery report only for a failed event: flush's count of events still queued and the
        # failures' reports say all a publish needs, and a Python callback per acked event (from
        # flush's thread, taking the GIL each time) cost ~0.5-1 µs of CPU per event.
        self.config = {**config, "delivery.report.only.error": True}
        self.producer = Producer(self.config)
        self.failed: list[KafkaError] = []

    def _delivered(self, err: KafkaError | None, _msg: object) -> None:  # runs in flush's thread
        if err is not None:
            self.failed.append(err)

    def produce(self, o: Outgoing) -> bool:
        """Queue ``o``; False if librdkafka's local queue is full (poll, then try again)."""
        headers = cast(_Headers, o.headers)  # read only: list is invariant, not the data
        try:
            self.producer.produce(o.topic, o.value, o.key, headers=headers, on_delivery=self._delivered)
        except BufferError:
            return False
        return True

    def poll(self, timeout_s: float) -> int:
        return int(self.producer.poll(timeout_s))

    def flush(self, timeout_s: float) -> int:
        """Wait for every queued event's ack; the count still queued after ``timeout_s``."""
        return int(self.producer.flush(timeout_s))

    def outcome(self, left: int, sent: int) -> str | None:
        """After ``flush``: None if all ``sent`` events were acked, else why not (and start over)."""
        failed, self.failed = self.failed, []
        if failed and any(e.fatal() for e in failed):
            # An idempotent producer's fatal error leaves it unusable: start a new one.
            log.error("domain-event producer failed fatally (%s); recreating it", failed[0])
            self.producer = Producer(self.config)
        if not left and not failed:
            return None
        reason = f"{failed[0].name()}: {failed[0].str()}" if failed else "ack timeout"
        return f"{len(failed) + left} of {sent} domain events not acked ({reason})"


class AiokafkaEvents:
    """Through an aiokafka producer, one awaited send per event (tests' fakes, and the fallback)."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer

    async def publish(self, events: Sequence[Outgoing]) -> None:
        futures = await publish(self.producer, events)
        await asyncio.gather(*[f for f in futures if isinstance(f, Awaitable)])

    async def close(self) -> None:
        return None
