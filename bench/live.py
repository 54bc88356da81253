"""End to end on the real pipeline at a fixed, moderate rate: commit→applied latency, CPU, row writes.

The worker is the real ``changefeed worker`` (public schema, default group, all its topics).
Lag = change-topic end offsets minus the offsets the sink stored in the same transaction as the rows.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported

from bench import resources
from bench.workloads import Workload, plan
from streams.demo import measure
from streams.demo.offsets import Offsets, end_offsets
from streams.demo.project import shipping_mappings
from streams.demo.run import install_audit
from streams.load import run_load
from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.verify.lag import topics_for

WORKER_TOPICS = ("customers.public.customers", "orders.orders.orders", "outbox.event.order")
CHANGE_TOPICS = WORKER_TOPICS[:2]  # the table topics every peer materializes
GROUP = "changefeed"


class WorkerProc:
    """One ``changefeed worker`` subprocess (only ever the ones the benchmark started)."""

    def __init__(self, env: dict[str, str], log: Path, extra: dict[str, str] | None = None) -> None:
        self._path, self._start = log, log.stat().st_size if log.exists() else 0
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

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until the worker has its partitions (it logs each assignment), so no load waits on start-up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._path.open("rb") as f:
                f.seek(self._start)
                if b"] assigned " in f.read():
                    return
            if self.proc.poll() is not None:
                msg = f"worker exited at start-up ({self.proc.returncode}); see {self._path}"
                raise RuntimeError(msg)
            time.sleep(0.2)
        msg = f"worker not assigned within {timeout_s:g} s; see {self._path}"
        raise RuntimeError(msg)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def wait_topics(bootstrap: str, wait_s: float = 20.0) -> None:
    """The worker refuses to start before its source topics exist. Debezium creates a change topic
    with its first record (the broker's auto-create is off), and a fresh stack's tables are empty:
    after ``wait_s`` the missing ones are created as Debezium would (one partition, factor 1)."""
    deadline = time.monotonic() + wait_s
    while True:
        have = {t for t, _ in end_offsets(bootstrap)}
        missing = [t for t in WORKER_TOPICS if t not in have]
        if not missing:
            return
        if time.monotonic() > deadline:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for f in admin.create_topics([NewTopic(t, 1, 1) for t in missing]).values():
                with contextlib.suppress(KafkaException):  # Debezium won the race
                    f.result()
            return
        time.sleep(1.0)


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


def skip_to(dsn: str, offsets: dict[str, int], schema: str = "public", group: str = GROUP) -> None:
    """Advance ``group``'s stored partition-0 offsets (stored with the rows; the worker resumes from
    them) to ``offsets``, never back: a stopped worker then skips what was written meanwhile."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for topic, offset in offsets.items():
            conn.execute(
                f'INSERT INTO "{schema}".changefeed_offsets (consumer_group, topic, partition, next_offset)'  # noqa: S608
                " VALUES (%s, %s, 0, %s) ON CONFLICT (consumer_group, topic, partition)"
                " DO UPDATE SET next_offset = greatest(changefeed_offsets.next_offset, excluded.next_offset),"
                " updated_at = now()",
                (group, topic, offset),
            )


def ends(offsets: Offsets, topics: tuple[str, ...]) -> int:
    return sum(n for (t, _), n in offsets.items() if t in topics)


def row_writes(sink: psycopg.Connection[Any], schema: str, tables: tuple[str, ...] | None = None) -> int:
    row = sink.execute(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
        " WHERE schemaname = %s AND (%s::text[] IS NULL OR relname = ANY(%s::text[]))"
        r" AND relname NOT LIKE 'changefeed\_%%' AND relname NOT LIKE 'plain\_%%'",  # data tables only
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
class LiveResult:
    workload: str
    rate_tx_s: float = 0.0  # the fixed, moderate load-generator rate asked for
    achieved_tx_s: float = 0.0
    events_s: float = 0.0  # change events/s the live load produced (all worker topics)
    latency: dict[str, float] = field(default_factory=dict)
    events: int = 0
    sink_row_writes: int = 0
    lag_after_s: float = 0.0  # seconds from the load's end until the sink had caught up
    backlog_at_start: int = 0  # events the worker still had to apply when the load began (0: a clean run)
    cpu_s_per_1k: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, list[int]] = field(default_factory=dict)  # topic -> [start, end) of partition 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return out


def progress(sink: psycopg.Connection[Any], bootstrap: str) -> tuple[int, int]:
    """(change-topic end offsets, offsets the sink stored) summed over the worker's topics."""
    return ends(end_offsets(bootstrap), WORKER_TOPICS), stored(sink, "public", GROUP, WORKER_TOPICS)


def wait_caught_up(sink: psycopg.Connection[Any], bootstrap: str, timeout_s: float) -> int:
    target, _ = progress(sink, bootstrap)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = stored(sink, "public", GROUP, WORKER_TOPICS)
        if done >= target:
            return 0
        time.sleep(0.2)
    return target - stored(sink, "public", GROUP, WORKER_TOPICS)


def latency(
    settings: Settings, sink: psycopg.Connection[Any], before: Offsets, after: Offsets, since: datetime
) -> dict[str, float]:
    """Commit→applied percentiles of the changes in [before, after): source commit time (Debezium
    ``source.ts``) to the sink commit that applied them (audit trigger rows written after ``since``)."""
    bootstrap = settings.kafka.bootstrap_servers
    # The tables of CHANGE_TOPICS only (customers, orders), as measured before the demo also
    # materialized order_lines: the numbers stay comparable with the earlier results.
    mappings = [m for m in shipping_mappings() if topics_for([m], CHANGE_TOPICS)]
    events = {
        m.source_table: list(measure.read_changes(bootstrap, settings.registry.url, topic, before, after))
        for m in mappings
        for topic in topics_for([m], CHANGE_TOPICS)
    }
    entries = measure.audit_entries(sink, since)
    stats, _ = measure.end_to_end(mappings, events, measure.applied_writes(mappings, entries))
    return {
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "p99_ms": stats.p99_ms,
        "max_ms": stats.max_ms,
        "measured": stats.measured,
        "unmatched": stats.unmatched,
    }


def run_live(
    settings: Settings, w: Workload, rate: float, duration_s: float, seed: int, pids: dict[str, int]
) -> LiveResult:
    """One fixed-rate run of the load generator through the whole pipeline, latency from the audit trail.

    The generator commits one transaction per operation and tops out near 100 tx/s on this box, far
    below the pipeline's replay maximum, so stepping it cannot find the pipeline's limit; the maximum
    comes from the replay runs and this rate is checked against it in the report (≤ 50%).
    """
    bootstrap = settings.kafka.bootstrap_servers
    res = LiveResult(w.name, rate_tx_s=rate)
    mappings = shipping_mappings()
    with psycopg.connect(conninfo_from(settings.sink_postgres)) as sink:
        # The previous workload's bulk top-up may still be draining: latency must not include it.
        res.backlog_at_start = wait_caught_up(sink, bootstrap, 600)
        install_audit(sink, mappings)
        before = end_offsets(bootstrap)
        writes0 = row_writes(sink, "public", ("customer_directory", "order_view"))
        cpu0 = {n: resources.cpu_seconds(p) for n, p in pids.items()}
        report = run_load(settings, plan(w, rate, duration_s, seed, live_keys(settings)))
        t_end = time.monotonic()
        wait_caught_up(sink, bootstrap, 120)
        res.lag_after_s = time.monotonic() - t_end
        after = end_offsets(bootstrap)
        res.latency = latency(settings, sink, before, after, report.started_at)
        res.achieved_tx_s = report.achieved_rate
        res.events = ends(after, WORKER_TOPICS) - ends(before, WORKER_TOPICS)
        res.events_s = res.events / max(report.elapsed_s, 1e-3)
        res.sink_row_writes = row_writes(sink, "public", ("customer_directory", "order_view")) - writes0
        res.cpu_s_per_1k = {
            n: (resources.cpu_seconds(p) - cpu0[n]) / max(1, res.events) * 1000 for n, p in pids.items()
        }
        res.ranges = {t: [before.get((t, 0), 0), after.get((t, 0), 0)] for t in CHANGE_TOPICS}
    return res
