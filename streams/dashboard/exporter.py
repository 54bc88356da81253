"""The dashboard's own ``/metrics``: what only a look at the whole stack knows.

A worker reports its own partitions; nothing in a worker knows that a connector task failed,
that every worker is gone, or how far behind a table is while no worker runs. The dashboard's
snapshot does, so it exports it for the alert rules (``compose/prometheus/alerts.yml``).
Labels are bounded: connector, task state, sink table, slot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.dashboard.collect import Snapshot

STATES = ("RUNNING", "FAILED", "PAUSED", "STOPPED", "UNASSIGNED", "RESTARTING")


class SnapshotCollector(Collector):
    def __init__(self, latest: Callable[[], Snapshot | None]) -> None:
        self.latest = latest

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.latest()
        if snap is None:
            return
        tasks = GaugeMetricFamily(
            "changefeed_connector_tasks",
            "Connector tasks by state (Kafka Connect).",
            labels=["connector", "state"],
        )
        for c in snap.connectors:
            for state in STATES:
                tasks.add_metric([c.name, state], sum(s == state for _, s in c.tasks))
        yield tasks
        lag_events = GaugeMetricFamily(
            "changefeed_table_lag_events", "Changes in Kafka not yet applied to the table.", labels=["table"]
        )
        lag_seconds = GaugeMetricFamily(
            "changefeed_table_lag_seconds", "Age of the table's oldest unapplied change.", labels=["table"]
        )
        dead = GaugeMetricFamily(
            "changefeed_table_dead_letters",
            "Records in the dead-letter topics of the table's topics.",
            labels=["table"],
        )
        conflicts = GaugeMetricFamily(
            "changefeed_table_conflicts", "Entries in the conflict ledger for the table.", labels=["table"]
        )
        for t in snap.tables:
            lag_events.add_metric([t.table], t.lag_events)
            lag_seconds.add_metric([t.table], t.lag_seconds)
            dead.add_metric([t.table], t.dead_letters)
            conflicts.add_metric([t.table], t.conflicts)
        yield from (lag_events, lag_seconds, dead, conflicts)
        members = GaugeMetricFamily("changefeed_group_members", "Workers in the consumer group.")
        members.add_metric([], len(snap.workers))
        yield members
        retained = GaugeMetricFamily(
            "changefeed_stack_slot_retained_bytes",
            "WAL a source slot retains (current LSN - restart_lsn).",
            labels=["slot"],
        )
        for s in snap.sources:
            if s.kind == "slot" and s.retained_bytes is not None:
                retained.add_metric([s.name.removeprefix("slot ")], s.retained_bytes)
        yield retained
        unreadable = GaugeMetricFamily(
            "changefeed_stack_unreadable", "Parts of the stack the last look could not read."
        )
        unreadable.add_metric([], len(snap.errors))
        yield unreadable
