"""The soak's verdict inputs: RSS growth first→last minute and the slope after warm-up."""

from __future__ import annotations

import pytest

from bench.stepped import SoakResult


def soak(rss: list[tuple[float, float]]) -> SoakResult:
    return SoakResult("insert-heavy", 1000.0, 600.0, 0, rss_mb=rss, lag_events=[(0.0, 5), (5.0, 3)])


def test_a_flat_worker_has_no_growth_and_no_slope() -> None:
    s = soak([(t * 5.0, 150.0) for t in range(121)]).summary()
    assert s["growth_mb"] == 0
    assert s["slope_mb_per_min"] == pytest.approx(0)
    assert s["final_lag_events"] == 3


def test_a_leak_after_warm_up_shows_as_slope_and_growth() -> None:
    # 20 MB of warm-up in the first minute is not a leak; 2 MB/min after it is.
    rss = [(t * 5.0, 130.0 + min(t * 5.0, 60) / 3 + max(0.0, t * 5.0 - 60) / 30) for t in range(121)]
    s = soak(rss).summary()
    assert s["slope_mb_per_min"] == pytest.approx(2.0, rel=0.01)
    assert s["growth_mb"] > 17
    assert s["peak_mb"] == pytest.approx(130 + 20 + 18)


def test_too_few_samples_give_no_verdict() -> None:
    assert soak([(0.0, 1.0), (5.0, 1.0)]).summary() == {}
