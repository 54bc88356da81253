"""The demo's read-your-writes tally (pure parts)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from streams.demo.ryw import RywStats, _stamp


def test_p99_of_waits() -> None:
    stats = RywStats(pairs=100, waits_s=[i / 1000 for i in range(1, 101)])
    assert stats.p99_ms == 100.0
    assert math.isnan(RywStats().p99_ms)


def test_stamps_compare_across_sources() -> None:
    # PostgreSQL's to_jsonb gives an offset; MariaDB's DATETIME(6) arrives naive UTC
    assert _stamp("2026-11-30T00:37:00.123456+00:00") == datetime(2026, 11, 30, 0, 37, 0, 123456, tzinfo=UTC)
    assert _stamp("2026-11-30T00:37:00.123456") == datetime(2026, 11, 30, 0, 37, 0, 123456, tzinfo=UTC)
    assert _stamp(datetime(2026, 1, 1)).tzinfo is UTC
