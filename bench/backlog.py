"""Catch-up: with the workers stopped, bulk-write a backlog at the source (Debezium's capture rate
alone is timed here), then start one worker and time its drain from first to last flush."""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import profile
from bench.live import GROUP, WORKER_TOPICS, WorkerProc, ends, stored
from bench.resources import Sampler
from streams.demo.offsets import end_offsets
from streams.load import customers
from streams.settings import Settings
from streams.sinks import conninfo_from

CHUNK = 10_000  # rows per source transaction


@dataclass
class BacklogResult:
    events: int
    source_insert_s: float
    capture_ev_s: float  # Debezium alone: source commit -> Kafka, workers stopped
    drain_ev_s: float
    drain_s: float
    worker_peak_rss_mb: float
    profile: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_backlog(settings: Settings, n: int, tag: str) -> tuple[float, float]:
    """Insert ``n`` customers in chunks; return (insert seconds, capture events/s)."""
    bootstrap = settings.kafka.bootstrap_servers
    start = ends(end_offsets(bootstrap), WORKER_TOPICS)
    t0 = time.monotonic()
    with customers.connect(settings.source_postgres) as pg:
        for lo in range(0, n, CHUNK):
            pg.execute(
                "INSERT INTO public.customers"
                " (email, first_name, last_name, tier, bio, created_at, updated_at)"
                " SELECT 'bulk-' || %s::text || '-' || g || '@example.com', 'Bulk', 'Row ' || g, 'standard',"
                " 'backlog row', clock_timestamp(), clock_timestamp()"
                " FROM generate_series(%s::int, %s::int) AS g",
                (tag, lo, min(n, lo + CHUNK) - 1),
            )
            pg.commit()
    inserted = time.monotonic() - t0
    while ends(end_offsets(bootstrap), WORKER_TOPICS) < start + n:
        if time.monotonic() - t0 > 600:
            msg = "Debezium did not capture the backlog within 600 s"
            raise RuntimeError(msg)
        time.sleep(0.2)
    return inserted, n / (time.monotonic() - t0)


def drain(
    settings: Settings, env: dict[str, str], logs: Path, sampler_pids: dict[str, int], profile_to: Path | None
) -> tuple[float, float, float, str | None]:
    bootstrap = settings.kafka.bootstrap_servers
    target = ends(end_offsets(bootstrap), WORKER_TOPICS)
    worker = WorkerProc(env, logs / "bench-drain-worker.log")
    sampler_pids["worker-drain"] = worker.pid
    sampler = Sampler(lambda: {"worker": worker.pid}, 0.5).start()
    spy: subprocess.Popen[bytes] | None = None
    try:
        with psycopg.connect(conninfo_from(settings.sink_postgres)) as sink:
            first: tuple[float, int] | None = None
            initial = stored(sink, "public", GROUP, WORKER_TOPICS)
            while True:
                done = stored(sink, "public", GROUP, WORKER_TOPICS)
                now = time.monotonic()
                if first is None and done > initial and worker.proc.poll() is None:
                    first = (now, done)
                    if profile_to is not None:  # sample the worker's stacks while it drains
                        spy = profile.record(worker.pid, profile_to)
                if done >= target:
                    break
                if worker.proc.poll() is not None or now - (first or (now, 0))[0] > 900:
                    msg = "drain worker exited or took > 900 s"
                    raise RuntimeError(msg)
                time.sleep(0.1)
        assert first is not None
        secs = max(1e-3, time.monotonic() - first[0])
        rate = (target - first[1]) / secs
    finally:
        sampler.stop()
        sampler_pids.pop("worker-drain", None)
        worker.stop()
        if spy is not None:
            spy.wait(60)  # py-spy ends with the worker and writes its samples
    peak = sampler.peak_rss.get("worker", 0.0)
    return rate, secs, peak, str(profile_to) if profile_to and profile_to.exists() else None
