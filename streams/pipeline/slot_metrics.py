"""The source's replication-slot lag on the worker's metrics endpoint, read at scrape time.

A PostgreSQL slot holds WAL until its consumer confirms it; a stalled connector makes it grow
until the source's disk fills. Read from ``pg_replication_slots`` through the same query as
``changefeed status`` (streams.connect.health), at most every ``MIN_INTERVAL_S`` however often
Prometheus scrapes, and never failing a scrape: an unreachable source exports ``up 0``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.connect.health import SlotHealth

log = logging.getLogger(__name__)
MIN_INTERVAL_S = 10.0


class SlotCollector(Collector):
    def __init__(self, read: Callable[[], list[SlotHealth]], min_interval_s: float = MIN_INTERVAL_S) -> None:
        self.read, self.min_interval_s = read, min_interval_s
        self.lock = threading.Lock()
        self.at = float("-inf")
        self.slots: list[SlotHealth] = []
        self.up = 0

    def _refresh(self) -> None:
        with self.lock:
            if time.monotonic() - self.at < self.min_interval_s:
                return
            self.at = time.monotonic()
            try:
                self.slots, self.up = self.read(), 1
            except Exception as exc:  # a metric must never break the scrape or the worker
                log.debug("replication slots not read: %s", exc)
                self.slots, self.up = [], 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self._refresh()
        up = GaugeMetricFamily("changefeed_source_slots_up", "1 when the source's slots could be read.")
        up.add_metric([], self.up)
        yield up
        retained = GaugeMetricFamily(
            "changefeed_source_slot_retained_bytes",
            "WAL the source keeps for the slot (current LSN - restart_lsn).",
            labels=["slot"],
        )
        unconfirmed = GaugeMetricFamily(
            "changefeed_source_slot_lag_bytes",
            "WAL the slot's consumer has not confirmed (current LSN - confirmed_flush_lsn).",
            labels=["slot"],
        )
        active = GaugeMetricFamily(
            "changefeed_source_slot_active", "1 while a consumer streams the slot.", labels=["slot"]
        )
        for s in self.slots:
            retained.add_metric([s.slot], s.retained_bytes)
            unconfirmed.add_metric([s.slot], s.unconfirmed_bytes)
            active.add_metric([s.slot], 1 if s.active else 0)
        yield retained
        yield unconfirmed
        yield active
