"""Prometheus metrics of one worker, served on ``WorkerSettings.metrics_port`` (0: off).

Labels stay low-cardinality: topic, sink table, conflict reason — never keys or ids. The worker's
own registry (not the process default) keeps tests and several pipelines in one process apart.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from streams.sinks import FlushResult

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

    def serve(self, port: int, host: str = "127.0.0.1") -> bool:
        """Start the scrape endpoint; a taken port (a second worker on this host) only warns."""
        if not port:
            return False
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.warning("metrics endpoint %s:%d not started: %s", host, port, exc)
            return False
        log.info("metrics on http://%s:%d/metrics", host, port)
        return True
