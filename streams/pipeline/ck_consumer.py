"""The pipeline's group consumer on librdkafka (``confluent_kafka.Consumer``), aiokafka's shape.

librdkafka fetches in its own threads, and ``consume(n, timeout)`` hands back a batch of C-built
messages with the GIL released; aiokafka's fetcher runs as tasks on the worker's event loop. This
adapter offers exactly what ``Pipeline`` and ``Rebalance`` use of ``AIOKafkaConsumer``
(``getmany``, ``seek``, ``highwater``, ``assignment``, ``commit``, ``subscribe`` with a listener,
``start``, ``stop``), so the loop is the same with either client (``[worker] consumer``).

Every blocking librdkafka call runs on ONE private thread, in order: a ``consume`` and a ``close``
never overlap, and the event loop never blocks on the broker.

Rebalances. librdkafka calls ``on_assign``/``on_revoke`` inside ``consume``, on that thread. The
callbacks run the pipeline's listener coroutines on the event loop and wait for them:

* assigned: the listener loads each partition's stored offset from the sink and calls ``seek``;
  while it runs, ``seek`` only notes the offset, and the callback then ``assign`` s the partitions
  WITH those offsets. No fetch starts before that, so no record from before the sink's offset is
  ever returned (a seek after a plain assign would race the first fetch from the committed offset).
* revoked: the listener waits for the pipeline's lock (the batch in flight flushes) and revokes
  the partitions in the sink. At ``stop`` (``close`` revokes everything) it is skipped: the loop
  has ended or been abandoned by then, nothing is processed after it, and the sink closes next;
  a listener still waiting when the stop begins is cancelled, never waited on.

The protocol is the classic EAGER one (``roundrobin``, aiokafka's default assignor):
workers of one group may run either client (a rolling switch between them, or `--processes N`
with mixed settings), which a cooperative protocol would refuse; and every rebalance revokes
everything first, the semantics the listener and the sink's per-partition state were built on.
Cooperative rebalancing would spare the untouched partitions a pause of a few hundred
milliseconds; a group of a handful of workers rebalances too rarely for that to matter.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as CkPartition

from streams.errors import TransientError
from streams.settings import KafkaSettings, WorkerSettings

log = logging.getLogger(__name__)
# A listener still waited on after this long is re-checked for a stop (never abandoned otherwise).
WAIT_SLICE_S = 0.5
# librdkafka's "no offset known" (OFFSET_INVALID) and unknown watermark.
NO_OFFSET = -1001


class TopicPartition(NamedTuple):
    """Equal to (and hashed as) aiokafka's ``TopicPartition``: both are (topic, partition) tuples."""

    topic: str
    partition: int


class Listener(Protocol):
    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> Awaitable[None]: ...
    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> Awaitable[None]: ...


class CkRecord:
    """One consumed record with the attributes of ``streams.pipeline.handle.Record``."""

    __slots__ = ("headers", "key", "offset", "partition", "timestamp", "topic", "value")

    def __init__(self, m: Message) -> None:
        # The stubs allow None for an error event; a consumed record always has these, and
        # consumed headers are (str, bytes) pairs. No checks: this runs once per record.
        self.topic: str = m.topic()  # type: ignore[assignment]
        self.partition: int = m.partition()  # type: ignore[assignment]
        self.offset: int = m.offset()  # type: ignore[assignment]
        self.timestamp: int = m.timestamp()[1]
        self.key: bytes | None = m.key()
        self.value: bytes | None = m.value()
        self.headers: Sequence[tuple[str, bytes]] = m.headers() or ()  # type: ignore[assignment]


def consumer_config(kafka: KafkaSettings, worker: WorkerSettings) -> dict[str, Any]:
    """librdkafka's settings equal to ``clients.consumer_kwargs`` (same group, same limits)."""
    return {
        "bootstrap.servers": kafka.bootstrap_servers,
        "group.id": worker.app_id,
        "client.id": f"{worker.app_id}-consumer",
        "enable.auto.commit": False,  # commits follow the sink transaction, never a timer
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",  # no sink offset and no commit: start from the beginning
        "session.timeout.ms": int(worker.session_timeout_s * 1000),
        "heartbeat.interval.ms": int(worker.heartbeat_interval_s * 1000),
        "partition.assignment.strategy": "roundrobin",  # eager, and aiokafka's default (see above)
        "fetch.wait.max.ms": worker.fetch_max_wait_ms,
        # A source topic created after start joins the pattern subscription within this time.
        "topic.metadata.refresh.interval.ms": 5000,
        "max.partition.fetch.bytes": max(4 * 1024 * 1024, kafka.max_message_bytes),
        "fetch.max.bytes": max(50 * 1024 * 1024, kafka.max_message_bytes),
        "receive.message.max.bytes": max(50 * 1024 * 1024, kafka.max_message_bytes) + 1024 * 1024,
        # librdkafka prefetches up to this much per partition (64 MiB by default, which alone put a
        # draining worker near its 250 MB budget); 16 MiB still holds several full batches.
        "queued.max.messages.kbytes": max(16 * 1024, 2 * kafka.max_message_bytes // 1024),
        # A missing subscribed topic is normal (Connect creates change topics with their first record).
        "allow.auto.create.topics": False,
    }


class CkConsumer:
    def __init__(self, config: Mapping[str, Any], client: Consumer | None = None) -> None:
        # ``client``: unit tests pass a stand-in; the worker lets the adapter build its own.
        self._c = client if client is not None else Consumer(dict(config), logger=log)
        # One thread for every blocking call: consume and close never run at once.
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ck-consumer")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pattern: str | None = None
        self._listener: Listener | None = None
        self._assigned: set[TopicPartition] = set()
        self._seeks: dict[TopicPartition, int] | None = None  # collecting, inside on_assign
        self._closing = threading.Event()
        self._failure: BaseException | None = None

    # --- what the pipeline uses ------------------------------------------------------------

    def subscribe(self, *, pattern: str, listener: Listener) -> None:
        """Noted; ``start`` subscribes (the callbacks need the running loop)."""
        if not pattern.startswith("^"):
            msg = f"librdkafka takes a pattern only when it starts with '^': {pattern!r}"
            raise ValueError(msg)
        self._pattern, self._listener = pattern, listener

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._pattern is not None:
            self._c.subscribe(
                [self._pattern], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[CkRecord]]:
        """Like aiokafka's: what is fetched already, else wait up to ``timeout_ms`` for any."""
        if self._closing.is_set():
            return {}
        messages = await self._call(self._poll, max_records, timeout_ms / 1000)
        if self._failure is not None:  # a listener failed inside consume: nothing may go on
            failure, self._failure = self._failure, None
            raise failure
        if self._closing.is_set():
            return {}  # stopping: not processed, not committed, read again by the next owner
        out: dict[TopicPartition, list[CkRecord]] = {}
        for m in messages:
            err = m.error()
            if err is not None:
                self._report(err)
                continue
            r = CkRecord(m)
            tp = TopicPartition(r.topic, r.partition)
            batch = out.get(tp)
            if batch is None:
                out[tp] = [r]
            else:
                batch.append(r)
        if not out.keys() <= self._assigned:
            # A revoke ran inside this consume: what was fetched for a partition given away is
            # not ours to process (librdkafka drops what predates a reassignment by itself).
            out = {tp: rs for tp, rs in out.items() if tp in self._assigned}
        return out

    def seek(self, tp: TopicPartition, offset: int) -> None:
        key = TopicPartition(tp.topic, tp.partition)
        if self._seeks is not None:  # inside on_assign: becomes the assignment's start offset
            self._seeks[key] = offset
        else:
            self._c.seek(CkPartition(tp.topic, tp.partition, offset))

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end offset as of its last fetch (no broker request)."""
        try:
            _, high = self._c.get_watermark_offsets(CkPartition(tp.topic, tp.partition), cached=True)
        except (KafkaException, RuntimeError):  # RuntimeError: closed
            return None
        return None if high < 0 else int(high)

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Asynchronous: an optimization after the sink commit, and never worth a wait."""
        self._c.commit(
            offsets=[CkPartition(tp.topic, tp.partition, o) for tp, o in offsets.items()], asynchronous=True
        )

    async def stop(self) -> None:
        """Leave the group (after the consume in flight returns) and close."""
        if self._closing.is_set():
            return
        self._closing.set()
        try:
            await self._call(self._c.close)
        finally:
            self._thread.shutdown(wait=False)

    # --- on the consumer thread ---------------------------------------------------------------

    def _poll(self, max_records: int, timeout_s: float) -> list[Message]:
        """Whatever is fetched already; if nothing, the first record within ``timeout_s`` and
        whatever came with it (``consume(n, t)`` alone would wait the full timeout for ``n``)."""
        got = self._c.consume(max_records, 0)
        if got or self._failure is not None:
            return got
        first = self._c.consume(1, timeout_s)
        if not first or self._failure is not None or max_records == 1:
            return first
        return first + self._c.consume(max_records - 1, 0)

    def _on_assign(self, _c: Consumer, partitions: list[CkPartition]) -> None:
        tps = [TopicPartition(p.topic, p.partition) for p in partitions]
        self._seeks = {}
        try:
            if self._listener is not None and not self._closing.is_set():
                self._wait(self._listener.on_partitions_assigned, tps)
            seeks = self._seeks
        finally:
            self._seeks = None
        if self._failure is not None or self._closing.is_set():
            # No offsets loaded: nothing of these partitions may be fetched (the loop raises
            # before it processes anything, or the worker is stopping).
            self._c.assign([])
            return
        self._c.assign([CkPartition(t.topic, t.partition, seeks.get(t, NO_OFFSET)) for t in tps])
        self._assigned.update(tps)

    def _on_revoke(self, _c: Consumer, partitions: list[CkPartition]) -> None:
        tps = [TopicPartition(p.topic, p.partition) for p in partitions]
        if self._listener is not None and not self._closing.is_set():
            self._wait(self._listener.on_partitions_revoked, tps)
        self._assigned.difference_update(tps)
        self._c.unassign()

    def _wait(
        self, call: Callable[[list[TopicPartition]], Awaitable[None]], tps: list[TopicPartition]
    ) -> None:
        """Run a listener coroutine on the event loop and wait for it (a stop cancels the wait)."""
        assert self._loop is not None

        async def run() -> None:
            await call(tps)

        done = asyncio.run_coroutine_threadsafe(run(), self._loop)
        while True:
            try:
                done.result(WAIT_SLICE_S)
                return
            except concurrent.futures.TimeoutError:
                if self._closing.is_set():  # the stop holds the lock the listener waits for
                    done.cancel()
                    return
            except BaseException as exc:
                log.error("rebalance listener failed: %s: %s", type(exc).__name__, exc)
                self._failure = exc if isinstance(exc, Exception) else TransientError(str(exc))
                return

    # --- on the event loop ----------------------------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, fn, *args)

    @staticmethod
    def _report(err: KafkaError) -> None:
        # A subscribed topic that does not exist yet is expected; everything else is worth a line.
        if err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._PARTITION_EOF):
            log.debug("consumer: %s", err)
        elif err.fatal():
            msg = f"consumer failed fatally: {err}"
            raise TransientError(msg)
        else:
            log.warning("consumer: %s", err)
