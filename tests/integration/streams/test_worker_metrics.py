"""``changefeed worker`` serves Prometheus metrics with low-cardinality labels; scrape them."""

from __future__ import annotations

import os
import re
import socket
import urllib.request
import uuid
from collections.abc import Callable

import pytest

from streams.settings import Settings
from tests.integration.streams.helpers import Worker
from tests.polling import poll

pytestmark = pytest.mark.integration
SERIES = re.compile(r"^(?P<name>[a-z_]+)(\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, str], float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        m = SERIES.match(line)
        if m and not line.startswith("#"):
            out[(m["name"], m["labels"] or "")] = float(m["value"])
    return out


def test_worker_metrics_are_scraped(settings: Settings, schema: str, workers: Callable[..., Worker]) -> None:
    port = free_port()
    os.environ["CHANGEFEED_WORKER__METRICS_PORT"] = str(port)
    try:
        workers(f"it-metrics-{uuid.uuid4().hex[:8]}", schema)
    finally:
        del os.environ["CHANGEFEED_WORKER__METRICS_PORT"]

    def applied() -> dict[tuple[str, str], float]:
        series = scrape(port)
        done = series.get(("changefeed_events_applied_total", 'table="customer_directory"'), 0) > 0
        return series if done and series.get(("changefeed_flush_latency_seconds_count", ""), 0) > 0 else {}

    series = poll(applied, 120, "applied customer rows in the worker's metrics")
    assert series[("changefeed_events_consumed_total", 'topic="customers.public.customers"')] > 0
    labels = {lab for _, lab in series}
    assert all(not re.search(r"(key|id)=", lab) for lab in labels)  # no keys or ids as labels
    assert {n for n, _ in series} >= {
        "changefeed_events_consumed_total",
        "changefeed_events_applied_total",
        "changefeed_flush_latency_seconds_bucket",
    }
