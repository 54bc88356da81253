"""The demo's read-your-writes tally (pure parts)."""

from __future__ import annotations

import math

from streams.demo.ryw import RywStats


def test_p99_of_waits() -> None:
    stats = RywStats(pairs=100, waits_s=[i / 1000 for i in range(1, 101)])
    assert stats.p99_ms == 100.0
    assert math.isnan(RywStats().p99_ms)
