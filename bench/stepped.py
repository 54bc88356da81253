"""Maximum sustained end-to-end throughput by stepping a fixed-rate load, latency at half of it, soak.

The real path: set-based transactions at the customers source (``bench.bulk.BulkSource``, paced to
a fixed rate of row changes) → Debezium → Kafka → the real ``changefeed worker`` (public schema,
default group) → sink. A step is *sustained* when, after its load stops, the sink holds every
change within ``CATCH_UP_S``: a pipeline slower than the load builds a backlog that takes longer
than that to drain (at 10% over capacity, a 20 s step leaves 2 s of backlog). The ladder grows by
``FACTOR`` until a step is not sustained or the generator itself cannot keep the rate; then two
bisections between the last sustained rung and the first failed one narrow the maximum.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench import live, resources
from bench.bulk import BulkSource
from bench.workloads import Workload
from streams.demo.offsets import end_offsets
from streams.demo.project import shipping_mappings
from streams.demo.run import install_audit
from streams.settings import Settings
from streams.sinks import conninfo_from

CATCH_UP_S = 3.0  # sink holds everything this long after the load stopped: the step was sustained
FACTOR = 1.5
START_EV_S = 1000.0
MAX_STEPS = 8
REFINE_STEPS = 2  # bisections between the last sustained rung and the first that was not
GENERATOR_SHORTFALL = 0.9  # achieved < 90% of the asked rate: the generator, not the pipeline, is the limit


@dataclass
class Step:
    asked_ev_s: float
    achieved_ev_s: float
    changes: int  # row changes committed at the source
    catch_up_s: float  # load end → the sink stored every change-topic offset
    sustained: bool


@dataclass
class SteppedResult:
    workload: str
    steps: list[Step] = field(default_factory=list)
    max_sustained_ev_s: float = 0.0
    limited_by: str = ""  # "pipeline" or "generator" (or "ladder end")
    half_load_ev_s: float = 0.0
    latency: dict[str, float] = field(default_factory=dict)  # at half of the maximum
    cpu_s_per_1k: dict[str, float] = field(default_factory=dict)  # at half of the maximum

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SoakResult:
    workload: str
    rate_ev_s: float
    duration_s: float
    changes: int
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (s since start, worker RSS)
    lag_events: list[tuple[float, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, float]:
        """RSS of the first and last minute (means), peak, and the slope after a 1-minute warm-up."""
        r = self.rss_mb
        if len(r) < 4:
            return {}
        end = r[-1][0]
        first = [v for t, v in r if t <= 60] or [r[0][1]]
        last = [v for t, v in r if t >= end - 60] or [r[-1][1]]
        warm = [(t, v) for t, v in r if t >= 60] or r
        n = len(warm)
        mt, mv = sum(t for t, _ in warm) / n, sum(v for _, v in warm) / n
        var = sum((t - mt) ** 2 for t, _ in warm)
        slope = sum((t - mt) * (v - mv) for t, v in warm) / var * 60 if var else 0.0
        lags = [n for _, n in self.lag_events]
        return {
            "first_min_mb": sum(first) / len(first),
            "last_min_mb": sum(last) / len(last),
            "peak_mb": max(v for _, v in r),
            "growth_mb": sum(last) / len(last) - sum(first) / len(first),
            "slope_mb_per_min": slope,
            "max_lag_events": max(lags) if lags else 0,
            "final_lag_events": lags[-1] if lags else 0,
        }


def paced(source: BulkSource, rate: float, duration_s: float, tick: Any = None) -> tuple[int, float]:
    """Commit transactions at ``rate`` row changes/s for ``duration_s``; (changes, seconds)."""
    t0 = time.monotonic()
    done = 0
    while (now := time.monotonic()) - t0 < duration_s:
        due = t0 + done / rate
        if now < due:
            time.sleep(due - now)  # pacing the load generator, not waiting for a result
        done += source.tx()
        if tick is not None:
            tick(time.monotonic() - t0)
    return done, time.monotonic() - t0


def catch_up(sink: psycopg.Connection[Any], bootstrap: str, timeout_s: float = 300.0) -> float:
    """Seconds from now until the sink stored every change-topic offset, Debezium included: done
    when the topics gained nothing for 1 s and the sink holds their end."""
    t0 = time.monotonic()
    reached: dict[int, float] = {}  # end offset total -> when the sink first held it
    last_end, since = -1, t0
    while time.monotonic() - t0 < timeout_s:
        end, stored = live.progress(sink, bootstrap)
        now = time.monotonic()
        if end != last_end:
            last_end, since = end, now
        if stored >= end:
            reached.setdefault(end, now)
            if now - since >= 1.0:
                return reached[end] - t0
        time.sleep(0.1)  # the sampling interval
    return float("inf")


def run_stepped(
    settings: Settings, w: Workload, seed: int, tag: str, step_s: float, pids: dict[str, int]
) -> SteppedResult:
    bootstrap = settings.kafka.bootstrap_servers
    res = SteppedResult(w.name)
    source = BulkSource(settings, w, seed, tag, purpose="stepped")
    try:
        with psycopg.connect(conninfo_from(settings.sink_postgres)) as sink:
            catch_up(sink, bootstrap, 600)  # start clean: earlier phases may still be draining
            rate, failed = START_EV_S, 0.0
            for _ in range(MAX_STEPS):
                step = _step(source, sink, bootstrap, rate, step_s)
                res.steps.append(step)
                if step.achieved_ev_s < GENERATOR_SHORTFALL * rate:
                    res.limited_by = "generator"
                    break
                if not step.sustained:
                    res.limited_by, failed = "pipeline", rate
                    break
                res.max_sustained_ev_s = step.achieved_ev_s
                rate *= FACTOR
            else:
                res.limited_by = "ladder end"
            ok = res.max_sustained_ev_s
            for _ in range(REFINE_STEPS if failed and ok else 0):  # bisect the last rung
                mid = (ok + failed) / 2
                step = _step(source, sink, bootstrap, mid, step_s)
                res.steps.append(step)
                if step.sustained:
                    ok = res.max_sustained_ev_s = step.achieved_ev_s
                else:
                    failed = mid
            if res.max_sustained_ev_s:
                _half_load(settings, sink, source, res, step_s, pids)
    finally:
        source.close()
    return res


def _step(
    source: BulkSource, sink: psycopg.Connection[Any], bootstrap: str, rate: float, step_s: float
) -> Step:
    changes, secs = paced(source, rate, step_s)
    took = catch_up(sink, bootstrap)
    achieved = changes / secs
    ok = took <= CATCH_UP_S and achieved >= GENERATOR_SHORTFALL * rate
    return Step(rate, achieved, changes, took, ok)


def _half_load(
    settings: Settings,
    sink: psycopg.Connection[Any],
    source: BulkSource,
    res: SteppedResult,
    step_s: float,
    pids: dict[str, int],
) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    install_audit(sink, shipping_mappings())
    sink.commit()
    before = end_offsets(bootstrap)
    since = datetime.now(UTC)
    cpu0 = {n: resources.cpu_seconds(p) for n, p in pids.items()}
    changes, secs = paced(source, res.max_sustained_ev_s / 2, step_s)
    catch_up(sink, bootstrap)
    after = end_offsets(bootstrap)
    res.half_load_ev_s = changes / secs
    res.latency = live.latency(settings, sink, before, after, since)
    events = max(1, live.ends(after, live.WORKER_TOPICS) - live.ends(before, live.WORKER_TOPICS))
    res.cpu_s_per_1k = {n: (resources.cpu_seconds(p) - cpu0[n]) / events * 1000 for n, p in pids.items()}


def soak(
    settings: Settings, w: Workload, seed: int, tag: str, rate: float, duration_s: float, worker_pid: int
) -> SoakResult:
    """``duration_s`` of load at ``rate`` with the worker's RSS and lag sampled every 5 s."""
    bootstrap = settings.kafka.bootstrap_servers
    res = SoakResult(w.name, rate, duration_s, 0)
    source = BulkSource(settings, w, seed, tag, purpose="soak")
    next_sample = [0.0]
    try:
        with psycopg.connect(conninfo_from(settings.sink_postgres)) as sink:

            def sample(t: float) -> None:
                if t >= next_sample[0]:
                    end, stored = live.progress(sink, bootstrap)
                    res.rss_mb.append((round(t, 1), resources.rss_mb(worker_pid)))
                    res.lag_events.append((round(t, 1), end - stored))
                    next_sample[0] = t + 5.0

            res.changes, _ = paced(source, rate, duration_s, sample)
            catch_up(sink, bootstrap)
    finally:
        source.close()
    return res
