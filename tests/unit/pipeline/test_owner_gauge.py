"""A standby reports its atomic source as owned = 0: the alert AtomicSourceUnowned needs a series
that sums to 0 when no worker owns the source, not an absent one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from streams.pipeline.atomic import TransactionMetrics
from streams.pipeline.owner import AtomicSourceService


def test_a_standby_exports_owned_zero_before_any_election() -> None:
    registry = CollectorRegistry()
    metrics = TransactionMetrics(registry)
    nothing: Any = None
    AtomicSourceService(nothing, nothing, nothing, SimpleNamespace(name="orders"), "", nothing, metrics)
    assert registry.get_sample_value("changefeed_atomic_source_owned", {"source": "orders"}) == 0.0
