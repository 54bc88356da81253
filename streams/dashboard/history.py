"""The last 15 minutes of snapshots: rates, latency quantiles and the chart's series (pure).

Counters only grow, so a rate is the difference of two looks over their time apart: events/s from
the sink's stored offsets (every worker's work, running or not), latency quantiles from the
difference of the workers' cumulative histogram buckets (what was applied inside the window).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from streams.dashboard.collect import Snapshot

KEEP_S = 15 * 60.0
RATE_WINDOW_S = 10.0
LATENCY_WINDOW_S = 60.0


@dataclass(frozen=True)
class Point:
    at: float
    applied: dict[str, int]  # table -> applied offsets (cumulative)
    lag: dict[str, int]  # table -> events waiting
    buckets: dict[str, dict[float, float]]  # table -> cumulative latency buckets


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' ``histogram_quantile``: linear inside the bucket that holds rank q·n."""
    edges = sorted(buckets.items())
    if not edges or edges[-1][1] <= 0:
        return None
    rank = q * edges[-1][1]
    lower_le, lower_n = 0.0, 0.0
    for le, n in edges:
        if n >= rank:
            if math.isinf(le):
                return lower_le  # beyond the last finite bucket: its bound is all we know
            span = n - lower_n
            return lower_le + (le - lower_le) * ((rank - lower_n) / span if span else 1.0)
        lower_le, lower_n = le, n
    return lower_le


def _minus(a: Mapping[float, float], b: Mapping[float, float]) -> dict[float, float]:
    # A worker restart resets its counters: a negative difference means "start over from a".
    out = {le: n - b.get(le, 0.0) for le, n in a.items()}
    return dict(a) if any(v < 0 for v in out.values()) else out


class History:
    def __init__(self, keep_s: float = KEEP_S) -> None:
        self.keep_s = keep_s
        self.points: deque[Point] = deque()

    def add(self, snap: Snapshot) -> None:
        self.points.append(
            Point(
                snap.at,
                {t.table: t.applied_offsets for t in snap.tables},
                {t.table: t.lag_events for t in snap.tables},
                snap.latency_buckets,
            )
        )
        while self.points and self.points[0].at < snap.at - self.keep_s:
            self.points.popleft()

    def _before(self, seconds: float) -> Point | None:
        """The newest point at least ``seconds`` older than the last one (else the oldest)."""
        if len(self.points) < 2:
            return None
        last = self.points[-1]
        older = [p for p in self.points if p.at <= last.at - seconds]
        return older[-1] if older else self.points[0]

    def rate(self, table: str) -> float | None:
        then = self._before(RATE_WINDOW_S)
        if then is None:
            return None
        now = self.points[-1]
        dt = now.at - then.at
        if dt <= 0 or table not in then.applied:
            return None
        return max(0, now.applied.get(table, 0) - then.applied[table]) / dt

    def latency(self, table: str) -> tuple[float | None, float | None]:
        """p50 and p99 of what the workers applied in the last minute (None: nothing applied)."""
        if not self.points:
            return None, None
        now = self.points[-1].buckets.get(table, {})
        then = self._before(LATENCY_WINDOW_S)
        window = _minus(now, then.buckets.get(table, {}) if then else {})
        return quantile(0.5, window), quantile(0.99, window)

    def series(self) -> list[tuple[float, float, int]]:
        """``(at, events/s over all tables, lag events over all tables)`` per point."""
        out = []
        pts = list(self.points)
        for before, p in itertools.pairwise(pts):
            dt = p.at - before.at
            applied = sum(max(0, n - before.applied.get(t, n)) for t, n in p.applied.items())
            out.append((p.at, applied / dt if dt > 0 else 0.0, sum(p.lag.values())))
        return out
