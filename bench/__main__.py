"""``python -m bench [--quick] [--keep-stack]``: the whole benchmark on a private stack.

Order: private stack up → per workload live stepping + latency (real worker) → copy each
workload's change-topic range to replay topics → peers alternating (changefeed, JDBC sink, plain
loop) × reps, limits once per rep → backlog (Debezium capture alone, then worker drain, profiled)
→ bench/results/<date>.{json,md,png} → private stack down (purged).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import backlog, bulk, limits, live, peers, plot, profile, replay, report, stack
from bench.resources import Sampler
from bench.workloads import WORKLOADS
from streams.sinks import conninfo_from

RESULTS = Path(__file__).resolve().parent / "results"


def say(line: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", flush=True)


def main() -> None:  # the run, top to bottom
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~5 min: 1 rep, short steps, 50k backlog")
    ap.add_argument("--keep-stack", action="store_true", help="leave the private stack running")
    ap.add_argument("--root", type=Path, default=Path("/tmp/changefeed-bench"))
    ap.add_argument("--seed", type=int, default=8)
    a = ap.parse_args()
    q = a.quick
    reps = 1 if q else 3
    rates = [100.0, 250.0, 500.0, 1000.0] if q else [100.0, 200.0, 400.0, 700.0, 1000.0, 1500.0]
    step_s, latency_s = (6.0, 8.0) if q else (12.0, 20.0)
    backlog_n = 50_000 if q else 200_000
    bulk_n = 15_000 if q else 60_000
    started = time.monotonic()
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H%M")
    RESULTS.mkdir(exist_ok=True)
    load0 = os.getloadavg()
    settings = stack.up(a.root, say)
    env = stack.bench_env(settings)
    logs = a.root / "logs"
    logs.mkdir(exist_ok=True)
    dsn = conninfo_from(settings.sink_postgres)
    replay.install_clock(dsn)
    pids: dict[str, int] = stack.component_pids(settings)
    sampler = Sampler(lambda: pids).start()
    notes: list[str] = []
    doc: dict[str, Any] = {}
    try:
        worker = live.WorkerProc(env, logs / "bench-live-worker.log")
        pids["worker-live"] = worker.pid
        lives, replay_ends = [], {}
        try:
            for w in WORKLOADS:
                say(f"live: {w.name}")
                res = live.run_live(settings, w, rates, step_s, latency_s, a.seed, dict(pids), say)
                lives.append(res.to_json())
                say(f"  bulk: {bulk_n:,} seeded set-based changes for the replay data set")
                bulk.run_bulk(settings, w, bulk_n, a.seed, date.replace("-", "").replace(":", ""))
                res.ranges = {t: [lo, hi] for t, (lo, _) in res.ranges.items()
                              for hi in [bulk.settled_end(settings.kafka.bootstrap_servers, t)]}  # fmt: skip
                replay_ends[w.short] = {}
                for topic, (lo, hi) in res.ranges.items():
                    target = replay.replay_topic(w.short, topic)
                    replay_ends[w.short][target] = replay.copy_range(
                        settings.kafka.bootstrap_servers, topic, target, lo, hi, settings.registry.url
                    )
                say(f"  replay topics for {w.short}: {replay_ends[w.short]}")
        finally:
            pids.pop("worker-live", None)
            worker.stop()
        series = [(t, r) for t, n, r in sampler.series if n == "worker-live"]
        runs: list[dict[str, Any]] = []
        lims: list[dict[str, Any]] = []
        for rep in range(1, reps + 1):
            order = ["changefeed", "jdbc-sink", "plain-loop"]
            order = order if rep % 2 else order[::-1]  # alternate who goes first
            for w in WORKLOADS:
                ends = replay_ends[w.short]
                for peer in order:
                    say(f"replay rep {rep} {w.short}: {peer}")
                    if peer == "changefeed":
                        r = peers.run_changefeed(settings, env, w.short, rep, ends, logs)
                    elif peer == "jdbc-sink":
                        r = peers.run_jdbc(settings, w.short, rep, ends, pids["connect"])
                    else:
                        r = peers.run_plain(settings, env, w.short, rep, ends)
                    r.workload = w.name
                    say(f"  {peer}: {r.events_s:,.0f} ev/s, {r.row_writes:,} row writes")
                    runs.append(r.to_json())
                lim = limits.measure_limits(settings, w.short, rep, ends)
                lim["workload"] = w.name
                say(f"  limits: {lim}")
                lims.append(lim)
        say(f"backlog: {backlog_n:,} events with the workers stopped")
        ins_s, capture = backlog.build_backlog(settings, backlog_n, date)
        prof_path = RESULTS / f"{date}-worker-profile.txt"
        drain_rate, drain_s, drain_rss, prof = backlog.drain(settings, env, logs, pids, prof_path)
        bl = backlog.BacklogResult(backlog_n, ins_s, capture, drain_rate, drain_s, drain_rss, prof)
        say(f"  capture {capture:,.0f} ev/s, drain {drain_rate:,.0f} ev/s")
    finally:
        sampler.stop()
        if not a.keep_stack:
            stack.down(settings, say)
    summary = report.summarize(runs, lims)
    resources: dict[str, Any] = {
        "peak_rss_mb": {**sampler.peak_rss, "worker-drain": drain_rss},
        "peak_pss_mb": {**sampler.peak_pss, "worker-drain": drain_rss},
        "peak_total_pss_mb": sampler.peak_total_pss,
    }
    if len(series) > 10:
        first = [r for t, r in series if t <= series[0][0] + 60]
        last = [r for t, r in series if t >= series[-1][0] - 60]
        resources["worker_rss_growth_mb"] = sum(last) / len(last) - sum(first) / len(first)
        resources["worker_rss_span_s"] = series[-1][0] - series[0][0]
    doc = {
        "meta": {
            "date": date, "quick": q, "reps": reps, "cpus": os.cpu_count(), "seed": a.seed,
            "loadavg_start": f"{load0[0]:.1f}", "loadavg_end": f"{os.getloadavg()[0]:.1f}",
            "wall_s": time.monotonic() - started, "jdbc_config": peers.BEST_JDBC,
        },  # fmt: skip
        "live": lives,
        "runs": runs,
        "limits": lims,
        "backlog": bl.to_json(),
        "summary": summary,
        "ratios": report.ratios(summary, capture),
        "resources": resources,
        "profile": profile.summarize(prof_path) if prof else None,
    }
    doc["goals"] = report.goals(doc)
    notes += [
        "Replay throughput is timed first→last sink write (statement trigger clock), so every peer's "
        "start-up and first batch's read are left out; larger first batches (changefeed/plain 5,000, "
        "JDBC ≤ 500 per poll) slightly favour the former on short replays.",
        "changefeed publishes domain events (its default) on top of the upserts; JDBC and the plain loop "
        "only upsert. changefeed's order_view also runs its enrichment; the others write the mapped columns.",
        f"JDBC sink config: {json.dumps(peers.BEST_JDBC)}; field.include.list = the mapped columns.",
        "Debezium capture rate is PostgreSQL only (bulk INSERT ... generate_series in 10k-row transactions).",
        f"Wall time of this run: {doc['meta']['wall_s'] / 60:.1f} min.",
    ]
    doc["notes"] = notes
    out = RESULTS / date
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str))
    out.with_suffix(".md").write_text(report.markdown(doc))
    plot.plot(doc, out.with_suffix(".png"))
    say(f"wrote {out}.json, .md, .png")
    print(report.markdown(doc))


if __name__ == "__main__":
    main()
