"""End to end on the real pipeline: step a fixed-rate load until lag grows, then latency at 50%.

The worker is the real ``changefeed worker`` (public schema, default group, all its topics).
Lag = change-topic end offsets minus the offsets the sink stored in the same transaction as the rows.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench import resources
from bench.workloads import Workload, plan
from streams.demo import measure
from streams.demo.offsets import Offsets, end_offsets
from streams.demo.run import install_audit
from streams.load import run_load
from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.verify import shipping_mappings

WORKER_TOPICS = ("customers.public.customers", "orders.orders.orders", "outbox.event.order")
CHANGE_TOPICS = WORKER_TOPICS[:2]  # the table topics every peer materializes
GROUP = "changefeed"


class WorkerProc:
    """One ``changefeed worker`` subprocess (only ever the ones the benchmark started)."""

    def __init__(self, env: dict[str, str], log: Path, extra: dict[str, str] | None = None) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            env={**env, **(extra or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def stored(sink: psycopg.Connection[Any], schema: str, group: str, topics: tuple[str, ...]) -> int:
    try:
        row = sink.execute(
            f'SELECT coalesce(sum(next_offset), 0) FROM "{schema}".changefeed_offsets'  # noqa: S608
            " WHERE consumer_group = %s AND topic = ANY(%s)",
            (group, list(topics)),
        ).fetchone()
    except psycopg.errors.UndefinedTable:
        sink.rollback()
        return 0
    sink.rollback()
    return int(row[0]) if row else 0


def ends(offsets: Offsets, topics: tuple[str, ...]) -> int:
    return sum(n for (t, _), n in offsets.items() if t in topics)


def row_writes(sink: psycopg.Connection[Any], schema: str, tables: tuple[str, ...] | None = None) -> int:
    row = sink.execute(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
        " WHERE schemaname = %s AND (%s::text[] IS NULL OR relname = ANY(%s::text[]))",
        (schema, list(tables) if tables else None, list(tables) if tables else None),
    ).fetchone()
    sink.rollback()
    return int(row[0]) if row else 0


def live_keys(settings: Settings) -> int:
    from streams.load import customers

    with customers.connect(settings.source_postgres) as pg:
        row = pg.execute("SELECT count(*) FROM public.customers").fetchone()
    return int(row[0]) if row else 0


@dataclass
class Step:
    target_tx_s: float
    achieved_tx_s: float
    events: int
    events_s: float
    lag_after: int
    sustained: bool


@dataclass
class LiveResult:
    workload: str
    steps: list[Step] = field(default_factory=list)
    max_tx_s: float = 0.0
    max_events_s: float = 0.0
    generator_bound: bool = False
    latency: dict[str, float] = field(default_factory=dict)
    latency_rate_tx_s: float = 0.0
    events: int = 0
    sink_row_writes: int = 0
    cpu_s_per_1k: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, list[int]] = field(default_factory=dict)  # topic -> [start, end) of partition 0

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def wait_caught_up(sink: psycopg.Connection[Any], bootstrap: str, timeout_s: float) -> int:
    target = ends(end_offsets(bootstrap), WORKER_TOPICS)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = stored(sink, "public", GROUP, WORKER_TOPICS)
        if done >= target:
            return 0
        time.sleep(0.2)
    return target - stored(sink, "public", GROUP, WORKER_TOPICS)


def run_live(
    settings: Settings,
    w: Workload,
    rates: list[float],
    step_s: float,
    latency_s: float,
    seed: int,
    pids: dict[str, int],
    say: Any,
) -> LiveResult:
    bootstrap = settings.kafka.bootstrap_servers
    res = LiveResult(w.name)
    mappings = shipping_mappings()
    with psycopg.connect(conninfo_from(settings.sink_postgres)) as sink:
        wait_caught_up(sink, bootstrap, 120)
        before = end_offsets(bootstrap)
        writes0 = row_writes(sink, "public", ("customer_directory", "order_view"))
        cpu0 = {n: resources.cpu_seconds(p) for n, p in pids.items()}
        keys = live_keys(settings)
        for i, rate in enumerate(rates):
            e0 = ends(end_offsets(bootstrap), WORKER_TOPICS)
            report = run_load(settings, plan(w, rate, step_s, seed + i, keys))
            e1 = ends(end_offsets(bootstrap), WORKER_TOPICS)
            time.sleep(2.0)  # one poll + flush cycle of headroom before judging the lag
            lag = ends(end_offsets(bootstrap), WORKER_TOPICS) - stored(sink, "public", GROUP, WORKER_TOPICS)
            ev_s = (e1 - e0) / report.elapsed_s
            ok = lag <= max(100, ev_s * 1.0)  # under a second of backlog left after the step
            res.steps.append(Step(rate, report.achieved_rate, e1 - e0, ev_s, lag, ok))
            say(f"  {w.name} step {rate:g} tx/s: {report.achieved_rate:.0f} tx/s, {ev_s:.0f} ev/s, lag {lag}")
            if not ok:
                break
            res.max_tx_s, res.max_events_s = report.achieved_rate, ev_s
            if report.achieved_rate < 0.9 * rate:  # the load generator, not the pipeline, is the limit
                res.generator_bound = True
                break
            keys = live_keys(settings)
        wait_caught_up(sink, bootstrap, 180)
        # Latency at 50% of the maximum sustained rate, with the audit trigger as the sink clock.
        install_audit(sink, mappings)
        lat_before = end_offsets(bootstrap)
        res.latency_rate_tx_s = max(5.0, 0.5 * (res.max_tx_s or rates[0]))
        report = run_load(settings, plan(w, res.latency_rate_tx_s, latency_s, seed + 100, keys))
        wait_caught_up(sink, bootstrap, 120)
        lat_after = end_offsets(bootstrap)
        events = {
            m.source_table: list(
                measure.read_changes(bootstrap, settings.registry.url, topic, lat_before, lat_after)
            )
            for m, topic in zip(mappings, CHANGE_TOPICS, strict=True)
        }
        entries = measure.audit_entries(sink, report.started_at)
        stats, _ = measure.end_to_end(mappings, events, measure.applied_writes(mappings, entries))
        res.latency = {
            "p50_ms": stats.p50_ms, "p95_ms": stats.p95_ms, "p99_ms": stats.p99_ms,
            "max_ms": stats.max_ms, "measured": stats.measured, "unmatched": stats.unmatched,
        }  # fmt: skip
        after = end_offsets(bootstrap)
        res.events = ends(after, WORKER_TOPICS) - ends(before, WORKER_TOPICS)
        res.sink_row_writes = row_writes(sink, "public", ("customer_directory", "order_view")) - writes0
        res.cpu_s_per_1k = {
            n: (resources.cpu_seconds(p) - cpu0[n]) / max(1, res.events) * 1000 for n, p in pids.items()
        }
        res.ranges = {t: [before.get((t, 0), 0), after.get((t, 0), 0)] for t in CHANGE_TOPICS}
    return res
