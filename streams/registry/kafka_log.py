"""The ``_schemas`` compacted topic as the registry's durable log.

One partition, so the log has one order; the registry process is its single writer (registrations
are serialized by a lock in the service). Every write is produced with ``acks=all`` and answered
only once our own consumer has read it back and applied it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

# aiokafka ships no type information and the mypy overrides are not ours to edit.
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError as SyncKafkaError
from kafka.errors import TopicAlreadyExistsError

from streams.registry.errors import ErrorCode, RegistryError
from streams.registry.log import Apply

log = logging.getLogger(__name__)

# Compaction keeps the latest record per key forever: that is what makes the topic the registry.
TOPIC_CONFIG = {"cleanup.policy": "compact"}
# The local stack is one broker; RF 1 is all it can hold.
REPLICATION_FACTOR = 1
# A broker that is still starting (or restarting, K4) is retried for this long before giving up.
CONNECT_TIMEOUT_S = 120.0
# One registration waits at most this long for Kafka to acknowledge and for the read-back.
WRITE_TIMEOUT_S = 15.0


def ensure_topic(bootstrap: str, topic: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Create the compacted one-partition topic if missing (the broker does not auto-create)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="changefeed-registry")
            try:
                admin.create_topics([NewTopic(topic, 1, REPLICATION_FACTOR, topic_configs=TOPIC_CONFIG)])
                log.info("created topic %s", topic)
            except TopicAlreadyExistsError:
                pass
            finally:
                admin.close()
            return
        except SyncKafkaError as exc:
            if time.monotonic() > deadline:
                raise
            log.info("waiting for Kafka at %s: %s", bootstrap, exc)
            time.sleep(1.0)  # retry pacing while the broker starts, not synchronization


class KafkaLog:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._tp = TopicPartition(topic, 0)
        self._next_offset = 0
        self._applied = asyncio.Condition()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._follower: asyncio.Task[None] | None = None

    async def start(self, apply: Apply) -> None:
        await asyncio.to_thread(ensure_topic, self._bootstrap, self._tp.topic)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True, linger_ms=0
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        await self._producer.start()
        await self._consumer.start()
        self._consumer.assign([self._tp])
        await self._consumer.seek_to_beginning(self._tp)
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        while await self._consumer.position(self._tp) < end:
            await self._poll(apply)
        log.info("replayed %s up to offset %d", self._tp.topic, end)
        self._follower = asyncio.create_task(self._follow(apply))

    async def _poll(self, apply: Apply) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(self._tp, timeout_ms=500)
        last = -1
        for message in batches.get(self._tp, []):
            apply(message.key or b"{}", message.value)
            last = message.offset
        if last >= 0:
            async with self._applied:
                self._next_offset = last + 1
                self._applied.notify_all()

    async def _follow(self, apply: Apply) -> None:
        while True:
            try:
                await self._poll(apply)
            except KafkaError:
                log.warning("reading %s failed; retrying", self._tp.topic, exc_info=True)
                await asyncio.sleep(1.0)  # back off while the broker is away

    async def append(self, key: bytes, value: bytes | None) -> None:
        assert self._producer is not None, "append before start"
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                meta = await self._producer.send_and_wait(self._tp.topic, value, key=key, partition=0)
                async with self._applied:
                    await self._applied.wait_for(lambda: self._next_offset > meta.offset)
        except (TimeoutError, KafkaError) as exc:
            msg = f"Writing to {self._tp.topic} did not complete: {exc!r}"
            raise RegistryError(ErrorCode.OPERATION_TIMEOUT, msg) from exc

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        for client in (self._producer, self._consumer):
            if client is not None:
                await client.stop()
