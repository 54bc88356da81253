"""Prometheus metrics of one worker, served on ``WorkerSettings.metrics_port`` (0: off).

Labels stay low-cardinality: topic, partition number, sink table, slot, conflict reason — never
keys, ids or offsets. The worker's own registry (not the process default) keeps tests and
several pipelines in one process apart. The same port answers ``/healthz`` and ``/readyz``
(streams.pipeline.probes).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.pipeline.probes import Probes, serve_probes
from streams.sinks import FlushResult
from streams.sinks.batch import runs_by_mapping

# Source commit → sink commit: milliseconds when flowing, minutes after an outage or a backlog.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# Ports a worker tries for its endpoint: the configured one and the next ones (several workers
# on one host, as in the demo); `changefeed dashboard` scrapes the same range by default.
PORT_TRIES = 4
# Pending latency samples: sink table → when the source committed each buffered change.
Pending = Mapping[str, Sequence[datetime]]
# The broker's next offset of a partition (None: not known yet).
HighWater = Callable[[str, int], int | None]


_partition_of = attrgetter("topic", "partition")
_timestamp_of = attrgetter("timestamp")
_committed_at = attrgetter("event.source_ts")  # None for an event without a source commit time


def observe_many(histogram: Any, amounts: Sequence[float]) -> None:
    """``histogram.observe(a)`` for each amount, in one update of each bucket and of the sum.

    Per observation, prometheus_client takes two locks and walks the bounds in Python: a quarter
    of a worker's metrics time at thousands of records per flush. Same exported values (a value
    equal to a bound counts in that bucket, as ``observe`` does); a client without the internals
    this relies on gets the per-value loop."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for a in amounts:
            histogram.observe(a)
        return
    histogram._raise_if_not_observable()
    counts = Tally(bisect_left(bounds, a) for a in amounts)
    for i, n in counts.items():
        buckets[i].inc(n)
    total.inc(sum(amounts))


def source_table_of(topic: str) -> str:
    """``<prefix>.<schema|db>.<table>`` → ``<schema|db>.<table>`` (bounded: one per captured table)."""
    parts = topic.split(".")
    return ".".join(parts[1:]) if len(parts) >= 3 else topic


log = logging.getLogger(__name__)


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "changefeed_events_consumed", "Records polled from Kafka.", ["topic"], registry=r
        )
        self.applied = Counter(
            "changefeed_events_applied",
            "Rows the sink committed (version guard passed).",
            ["table"],
            registry=r,
        )
        self.conflicts = Counter(
            "changefeed_conflicts",
            "Writes the version guard refused or ledgered.",
            ["table", "reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            "changefeed_dead_lettered", "Records sent to <topic>.dlq.", ["topic"], registry=r
        )
        self.dead_letter_repeats = Counter(
            "changefeed_dead_letter_repeats",
            "Redelivered poison records not dead-lettered again (their source offset is in the DLQ).",
            ["topic"],
            registry=r,
        )
        self.dead_letter_forms = Counter(
            "changefeed_dead_letter_forms",
            "Dead letters by form: as_is, null_value, truncated, bare (payload dropped), lost.",
            ["topic", "form"],
            registry=r,
        )
        self.flush_waits = Counter(
            "changefeed_flush_waits",
            "Flushes still running after the wait threshold (a lock another session holds, mostly).",
            ["topic"],
            registry=r,
        )
        self.missing_columns = Counter(
            "changefeed_source_column_missing",
            "Events whose writer schema lacked a mapped column (dropped or renamed at the source);"
            " the sink kept the stored value.",
            ["table", "column"],
            registry=r,
        )
        self.truncates = Counter(
            "changefeed_truncates",
            "Source TRUNCATEs, by what the sink did: applied (rows removed per the delete policy) or"
            " ignored (the table says truncate = ignore).",
            ["table", "action"],
            registry=r,
        )
        self.truncated_rows = Counter(
            "changefeed_truncated_rows",
            "Sink rows a source TRUNCATE removed or soft-deleted.",
            ["table"],
            registry=r,
        )
        self.flush_seconds = Histogram(
            "changefeed_flush_latency_seconds",
            "One sink flush: rows, enrichment, ledger and offsets in one transaction.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        # Issue 17: what an operator watches and alerts on.
        self.lag_events = Gauge(
            "changefeed_partition_lag_events",
            "Records in the partition not yet applied (broker high-water mark - next offset), after a flush.",
            ["topic", "partition"],
            registry=r,
        )
        self.lag_seconds = Gauge(
            "changefeed_partition_lag_seconds",
            "While records wait: age of the newest applied one (an upper bound of the oldest waiting"
            " record's age); 0 when caught up.",
            ["topic", "partition"],
            registry=r,
        )
        self.end_to_end = Histogram(
            "changefeed_end_to_end_latency_seconds",
            "Source commit (the change's source timestamp) to the sink commit of its flush.",
            ["table"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_records = Histogram(
            "changefeed_batch_records",
            "Records per processed batch (one flush).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.dead_letters_by_table = Counter(
            "changefeed_table_dead_lettered",
            "Records sent to a dead-letter topic, by source table (schema.table or db.table).",
            ["source_table"],
            registry=r,
        )
        self.rebalances = Counter(
            "changefeed_rebalances", "Partition assignments this worker received.", registry=r
        )
        self.assigned = Gauge(
            "changefeed_assigned_partitions", "Partitions this worker owns now.", registry=r
        )
        self.probes = Probes()

    def observe_records(self, records: Sequence[Any]) -> None:
        for topic, n in Tally(r.topic for r in records).items():
            self.consumed.labels(topic=topic).inc(n)

    def observe_flush(self, result: FlushResult, seconds: float) -> None:
        """Applied = the de-duplicated writes the flush sent minus the ones the guard refused."""
        self.flush_seconds.observe(seconds)
        sent = result.written
        refused = Tally(c.sink_table for c in result.conflicts if c.reason != "overwrote_newer")
        for c in result.conflicts:
            self.conflicts.labels(table=c.sink_table, reason=c.reason).inc()
        for table, n in sent.items():
            self.applied.labels(table=table).inc(max(0, n - refused[table]))
        for (table, column), n in result.missing.items():
            self.missing_columns.labels(table=table, column=column).inc(n)
        for table, action, rows in result.truncates:
            self.truncates.labels(table=table, action=action).inc()
            self.truncated_rows.labels(table=table).inc(rows)

    @staticmethod
    def pending(writes: Iterable[Any]) -> Pending:
        """Before a flush: the source commit times of the buffered changes, by sink table."""
        out: dict[str, list[datetime]] = {}
        # Two versions of a mirrored table's mapping: one table.
        for m, times in runs_by_mapping(writes, _committed_at):
            out.setdefault(f"{m.sink_schema}.{m.sink_table}", []).extend(times)
        return out

    def observe_applied(
        self, records: Sequence[Any], pending: Pending, result: FlushResult, high_water: HighWater
    ) -> None:
        """After a committed flush: batch size, end-to-end latency, lag of the batch's partitions."""
        self.batch_records.observe(len(records))
        now = datetime.now(UTC)
        for table, times in pending.items():
            ages = [max(0.0, (now - committed).total_seconds()) for committed in times]
            observe_many(self.end_to_end.labels(table=table), ages)
        newest: dict[tuple[str, int], int] = {}
        # A poll's records come grouped by partition: one max per run, not a dict update per record.
        for key, run in itertools.groupby(records, _partition_of):
            last = max(map(_timestamp_of, run))
            newest[key] = max(newest.get(key, last), last)
        for (topic, partition), next_offset in result.offsets.items():
            try:
                end = high_water(topic, partition)
            except Exception:  # e.g. a partition revoked meanwhile: a gauge must never stop the loop
                end = None
            if end is None:
                continue
            waiting = max(0, end - next_offset)
            self.lag_events.labels(topic=topic, partition=str(partition)).set(waiting)
            last = newest.get((topic, partition))
            age = max(0.0, time.time() - last / 1000) if waiting and last is not None else 0.0
            self.lag_seconds.labels(topic=topic, partition=str(partition)).set(age)

    def observe_dead_letter(self, topic: str) -> None:
        self.dead_letters_by_table.labels(source_table=source_table_of(topic)).inc()

    def observe_assigned(self, partitions: Iterable[tuple[str, int]], owned: int) -> None:
        self.rebalances.inc()
        self.assigned.set(owned)
        del partitions  # per-partition gauges appear with the first flush of each

    def observe_revoked(self, partitions: Iterable[tuple[str, int]], owned: int) -> None:
        """A partition another worker now owns must not keep reporting this worker's stale lag."""
        for topic, partition in partitions:
            for gauge in (self.lag_events, self.lag_seconds):
                with contextlib.suppress(KeyError):
                    gauge.remove(topic, str(partition))
        self.assigned.set(owned)

    def serve(self, port: int, host: str = "127.0.0.1", tries: int = PORT_TRIES) -> bool:
        """Start the scrape endpoint (and the probes). A taken port (another worker on this host)
        moves on to the next one, ``tries`` in all, so every local worker can be scraped (the
        dashboard looks at the same range); when all are taken, only a warning."""
        if not port:
            return False
        for candidate in range(port, port + tries):
            try:
                serve_probes(self.registry, self.probes, candidate, host)
            except OSError as exc:
                log.info("metrics port %s:%d taken (%s), trying the next", host, candidate, exc)
                continue
            log.info("metrics on http://%s:%d/metrics, probes on /healthz and /readyz", host, candidate)
            return True
        log.warning(
            "metrics endpoint not started: ports %d-%d on %s are all taken", port, port + tries - 1, host
        )
        return False

    def watch_slots(self, read: Callable[[], list[Any]]) -> None:
        """Export the source's replication slots (``streams.pipeline.slot_metrics``) at scrape time."""
        from streams.pipeline.slot_metrics import SlotCollector

        self.registry.register(SlotCollector(read))
