"""Which source offsets already have a dead letter: read from the dead-letter topic itself.

A record is dead-lettered before the sink transaction that stores its offset commits, so a
crash, a rebalance or a stop in between redelivers it, and every redelivery used to write it
again (3 poison records became 9 dead letters). Only the DLQ knows what reached it — a flag in
the sink would be committed after the send, exactly where the crash happens — so before its
first dead letter after an assignment, a worker reads the DLQ's tail and skips source offsets
found there (``cf_source_topic`` / ``cf_source_partition`` / ``cf_source_offset``).

Where the tail starts: a redelivery starts at the partition's first uncommitted record, the
oldest of the batch; an earlier delivery dead-lettered records of that batch only after
consuming it, so after that record was appended. The DLQ from that record's timestamp (minus
``CLOCK_SKEW_MS`` for producers whose clocks differ) holds every earlier copy. The scan runs
once per partition and assignment, and only when a partition has poison; its own sends are
added as they happen.
"""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]  # no py.typed

from streams.cdc import dlq_topic
from streams.errors import TransientError
from streams.pipeline.clients import reader_kwargs
from streams.pipeline.deadletter import parse_headers
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)
# Allowance for clock differences between the source's producer and the worker's.
CLOCK_SKEW_MS = 10 * 60 * 1000
SCAN_TIMEOUT_S = 120.0
POLL_MS = 500


class DeadLetterIndex:
    """Dead-lettered source offsets per assigned partition (``kafka=None``: no index, unit tests)."""

    def __init__(self, kafka: KafkaSettings | None, client_id: str = "changefeed-dlq-index") -> None:
        self.kafka, self.client_id = kafka, client_id
        self._seen: dict[tuple[str, int], set[int]] = {}
        self.scans = 0

    async def contains(self, topic: str, partition: int, offset: int, since_ms: int) -> bool:
        """Whether ``offset`` has a dead letter; a first call per partition reads the DLQ from
        ``since_ms`` (the timestamp of the batch's oldest record of the partition)."""
        if self.kafka is None:
            return False
        key = (topic, partition)
        if key not in self._seen:
            since = max(0, since_ms - CLOCK_SKEW_MS)
            self._seen[key] = await self._scan(topic, partition, since)
        return offset in self._seen[key]

    def add(self, topic: str, partition: int, offset: int) -> None:
        if (topic, partition) in self._seen:
            self._seen[(topic, partition)].add(offset)

    def forget(self, topic: str, partitions: list[int]) -> None:
        """On revoke: the next owner may dead-letter meanwhile; rescan after a re-assignment."""
        for p in partitions:
            self._seen.pop((topic, p), None)

    async def _scan(self, topic: str, partition: int, since_ms: int) -> set[int]:
        assert self.kafka is not None
        dlq = dlq_topic(topic)
        started = time.monotonic()
        consumer = AIOKafkaConsumer(**reader_kwargs(self.kafka, self.client_id))
        try:
            await consumer.start()
            # consumer.topics() fetches this too but does not keep it; partitions_for_topic would
            # only know topics the consumer already reads.
            cluster = await consumer._client.fetch_all_metadata()
            tps = [TopicPartition(dlq, p) for p in sorted(cluster.partitions_for_topic(dlq) or ())]
            if not tps:
                return set()
            consumer.assign(tps)
            starts = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
            ends = await consumer.end_offsets(tps)
            todo = {}
            for tp in tps:
                found = starts.get(tp)
                if found is not None and found.offset < ends[tp]:
                    consumer.seek(tp, found.offset)
                    todo[tp] = ends[tp]
            seen = await self._read(consumer, todo, topic, partition, started)
        except TransientError:
            raise
        except Exception as exc:  # the broker is down or moving: retried by the caller
            msg = f"reading {dlq} for earlier dead letters: {type(exc).__name__}: {exc}"
            raise TransientError(msg) from exc
        finally:
            await consumer.stop()
        self.scans += 1
        log.info(
            "%s[%d]: %d earlier dead letter(s) in %s since %d (%.1f s)",
            topic, partition, len(seen), dlq, since_ms, time.monotonic() - started,
        )  # fmt: skip
        return seen

    @staticmethod
    async def _read(
        consumer: AIOKafkaConsumer,
        todo: dict[TopicPartition, int],
        topic: str,
        partition: int,
        started: float,
    ) -> set[int]:
        seen: set[int] = set()
        want = (topic, str(partition))
        while todo:
            if time.monotonic() - started > SCAN_TIMEOUT_S:
                msg = f"reading {dlq_topic(topic)} took over {SCAN_TIMEOUT_S:.0f} s"
                raise TransientError(msg)
            batches = await consumer.getmany(*todo, timeout_ms=POLL_MS)
            for records in batches.values():
                for r in records:
                    why = parse_headers(list(r.headers or ()))
                    if (why.get("source_topic"), why.get("source_partition")) == want:
                        offset = why.get("source_offset", "")
                        if offset.isdigit():
                            seen.add(int(offset))
            for tp in list(todo):
                if await consumer.position(tp) >= todo[tp]:
                    del todo[tp]
        return seen
