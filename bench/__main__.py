"""``python -m bench [--quick] [--keep-stack]``: the whole benchmark on a private stack.

Order: private stack up (ports + CHANGEFEED_BENCH_PORT_SHIFT, default 400) → per workload a fixed
moderate live load with commit→applied latency (real worker) and a seeded set-based top-up (400k
changes in full mode) → copy each workload's change-topic range to one-partition replay topics, and
insert-heavy's also to 4-partition ones (keyed as Debezium would) → per workload a stepped
fixed-rate load up to the maximum sustained rate, latency at half of it → a soak at the insert-heavy
maximum (worker RSS over 10 minutes) → partitioned rep 1 (changefeed 1 and 2 worker processes vs
JDBC tasks.max 1 and 2, box idle share) → replay rep 1: peers alternating (changefeed, changefeed
without domain events, JDBC sink, plain loop; also the JDBC sink with Kafka's consumer defaults, the
stage limits, and py-spy on changefeed) → backlog (Debezium capture alone, then worker drain,
profiled) → replay rep 2, partitioned rep 2, replay rep 3, each only if the time budget holds
it → bench/results/<date>.{json,md,png} → stack down.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import backlog, bulk, limits, live, peers, plot, profile, replay, report, stack, stepped, txmodes
from bench.resources import Sampler, cpu_times, idle_share
from bench.workloads import WORKLOADS
from streams.settings import Settings
from streams.sinks import conninfo_from

RESULTS = Path(__file__).resolve().parent / "results"
SOAK_WORKLOAD = WORKLOADS[0]  # insert-heavy: every change a new key, so per-key state would show as growth
PART_WORKLOAD = WORKLOADS[0]  # insert-heavy: keys spread evenly over the partitions (no hot key)
PARTITIONS = 4
JDBC_VARIANT_WORKLOADS = ("ins", "upd")


@dataclass(frozen=True)
class Size:
    """One mode's sizes. Full: ≥ 400k events per replay (the fastest peer runs ≥ 20 s at 20k ev/s);
    every phase once, then more repetitions while ``budget_s`` holds them: ``make bench`` ends
    within ~50 min whatever the engine's speed (a skipped repetition is named in the notes)."""

    bulk_n: int  # seeded set-based changes added to each workload's replay
    reps: int  # replay repetitions: the 2nd and later ones only while the budget holds them
    part_reps: int  # partitioned repetitions: likewise
    live_rate: float  # tx/s: moderate, checked against the replay max
    live_s: float
    step_s: float
    soak_s: float  # the soak is 10 minutes
    backlog_n: int
    limits_n: int
    budget_s: float
    tx: txmodes.TxSize  # atomic vs per-change transactions (issue 16)
    tx_est_s: float  # what that phase takes, for the budget


FULL = Size(400_000, 3, 2, 40.0, 20.0, 12.0, 600.0, 200_000, 60_000, 47 * 60, txmodes.FULL_TX, 240.0)
# Free disk a run needs (a full run's private stack grew to ~21 GiB).
DISK_GIB = {"full": 30.0, "quick": 6.0}
QUICK = Size(30_000, 1, 1, 40.0, 10.0, 6.0, 30.0, 50_000, 30_000, 13.5 * 60, txmodes.QUICK_TX, 120.0)


def say(line: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", flush=True)


def main() -> None:  # the run, top to bottom
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="≤ 14 min: 1 rep, smaller replays, 45 s soak")
    ap.add_argument("--keep-stack", action="store_true", help="leave the private stack running")
    shift = stack.port_shift()  # another shift, another private root: two benchmarks never share one
    root = Path("/tmp/changefeed-bench" + ("" if shift == stack.DEFAULT_SHIFT else f"-{shift}"))  # noqa: S108
    ap.add_argument("--root", type=Path, default=root)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--render", type=Path, help="only re-render the .md/.png of a results JSON")
    a = ap.parse_args()
    if a.render:
        render(a.render)
        return
    q = a.quick
    size = QUICK if q else FULL
    started = time.monotonic()
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H%M")
    run_tag = date.replace("-", "").replace("T", "")[4:]  # MMDDHHMM
    RESULTS.mkdir(exist_ok=True)
    load0 = os.getloadavg()
    stack.check_free_disk(a.root, DISK_GIB["quick" if q else "full"])
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
    rep_s: list[float] = []
    tx_doc: dict[str, Any] = {}
    try:
        live.wait_topics(settings.kafka.bootstrap_servers)
        worker = live.WorkerProc(env, logs / "bench-live-worker.log")
        pids["worker-live"] = worker.pid
        worker.wait_ready()
        lives: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        soak_doc: dict[str, Any] = {}
        replay_ends: dict[str, dict[str, int]] = {}
        try:
            for w in WORKLOADS:
                say(f"live: {w.name}")
                res = live.run_live(settings, w, size.live_rate, size.live_s, a.seed, dict(pids))
                say(f"  {res.achieved_tx_s:.0f} tx/s, {res.events_s:.0f} ev/s, latency {res.latency}")
                lives.append(res.to_json())
                # The live worker sits the top-up out: it is measured on the replays, and applying
                # it here would only compete with Debezium and the copy for the 2 cores.
                pids.pop("worker-live", None)
                worker.stop()
                say(f"  bulk: {size.bulk_n:,} seeded set-based changes for the replay data set")
                bulk.run_bulk(settings, w, size.bulk_n, a.seed, date.replace("-", "").replace(":", ""))
                res.ranges = {
                    t: [lo, hi]
                    for t, (lo, _) in res.ranges.items()
                    for hi in [bulk.settled_end(settings.kafka.bootstrap_servers, t)]
                }
                replay_ends[w.short] = {}
                for topic, (lo, hi) in res.ranges.items():
                    target = replay.replay_topic(w.short, topic, run_tag)
                    replay_ends[w.short][target] = replay.copy_range(
                        settings.kafka.bootstrap_servers, topic, target, lo, hi, settings.registry.url
                    )
                say(f"  replay topics for {w.short}: {replay_ends[w.short]}")
                live.skip_to(dsn, {t: hi for t, (_, hi) in res.ranges.items()})
                worker = live.WorkerProc(env, logs / "bench-live-worker.log")
                pids["worker-live"] = worker.pid
                worker.wait_ready()
            part_ends = partitioned_copy(settings, replay_ends[PART_WORKLOAD.short], run_tag)
            say(f"  partitioned replay topics ({PARTITIONS} partitions by key): {part_ends}")
            for w in WORKLOADS:
                say(f"stepped load: {w.name} ({size.step_s:g} s steps from {stepped.START_EV_S:,.0f} ev/s)")
                sr = stepped.run_stepped(settings, w, a.seed, f"{run_tag}st", size.step_s, dict(pids))
                for st in sr.steps:
                    say(
                        f"  {st.asked_ev_s:,.0f} ev/s asked, {st.achieved_ev_s:,.0f} achieved, "
                        f"caught up {st.catch_up_s:.1f} s after: {'ok' if st.sustained else 'not sustained'}"
                    )
                say(f"  max sustained {sr.max_sustained_ev_s:,.0f} ev/s; at half: {sr.latency}")
                steps.append(sr.to_json())
            top = next((x for x in steps if x["workload"] == SOAK_WORKLOAD.name), None)
            if top and top["max_sustained_ev_s"]:
                rate = top["max_sustained_ev_s"]
                say(
                    f"soak: {SOAK_WORKLOAD.name} at {rate:,.0f} ev/s for {size.soak_s:g} s "
                    "(worker RSS every 5 s)"
                )
                sk = stepped.soak(
                    settings, SOAK_WORKLOAD, a.seed, f"{run_tag}sk", rate, size.soak_s, worker.pid
                )
                soak_doc = {**sk.to_json(), "summary": sk.summary()}
                say(f"  {soak_doc['summary']}")
        finally:
            pids.pop("worker-live", None)
            worker.stop()
        series = [(t, r) for t, n, r in sampler.series if n == "worker-live"]
        runs: list[dict[str, Any]] = []
        part_runs: list[dict[str, Any]] = []
        checkpoint = RESULTS / f"{date}.partial.json"  # what was measured so far, if the run dies
        failures: list[str] = []
        profiles: dict[str, Any] = {}  # workload -> py-spy summary of the profiled rep's changefeed run
        lims: list[dict[str, Any]] = []

        def save() -> None:
            checkpoint.write_text(
                json.dumps({"live": lives, "runs": runs, "partitioned": part_runs, "limits": lims}, indent=1)
            )

        def one(peer: str, wl: str, rep: int, ends: dict[str, int], spy_to: Path | None = None) -> Any:
            say(f"replay rep {rep} {wl}: {peer}")
            try:
                r = _peer(peer, settings, env, wl, rep, ends, logs, pids["connect"], spy_to)
            except RuntimeError as exc:  # one failed run is reported, not the end of the benchmark
                say(f"  {peer} FAILED: {exc}")
                failures.append(f"{wl} rep {rep} {peer}: {exc}")
                return None
            say(
                f"  {peer}: {r.events_s:,.0f} ev/s, {r.row_writes:,} row writes, "
                f"{r.cpu_s_per_1k:.3f} CPU s/1k"
            )
            return r

        def replay_rep(rep: int) -> None:
            t0 = time.monotonic()
            order = ["changefeed", "jdbc-sink", "plain-loop", "changefeed-nopub"]
            order = order if rep % 2 else order[::-1]  # alternate who goes first
            if rep == 1:  # what was tried for the JDBC sink, beside its best configuration
                order += list(peers.JDBC_VARIANTS)
            for w in WORKLOADS:
                ends = replay_ends[w.short]
                for peer in order:
                    if peer in peers.JDBC_VARIANTS and w.short not in JDBC_VARIANT_WORKLOADS:
                        continue
                    profiled = peer == "changefeed" and rep == 1
                    spy_to = RESULTS / f"{date}-profile-{w.short}.txt" if profiled else None
                    r = one(peer, w.short, rep, ends, spy_to)
                    if r is None:
                        continue
                    if spy_to is not None and spy_to.exists():
                        profiles[w.name] = profile.summarize(spy_to)
                    r.workload = w.name
                    runs.append(r.to_json())
                    save()
                if rep == 1:  # stage limits once, on a capped prefix (they hold every change in memory)
                    lim = limits.measure_limits(settings, w.short, rep, cap_ends(ends, size.limits_n))
                    lim["workload"] = w.name
                    say(f"  limits: {lim}")
                    lims.append(lim)
            rep_s.append(time.monotonic() - t0)

        def partitioned_rep(rep: int) -> None:
            order = ["changefeed-p4x1", "changefeed-p4x2", "jdbc-sink-p4t1", "jdbc-sink-p4t2"]
            for peer in order if rep % 2 else order[::-1]:
                before = cpu_times()
                r = one(peer, f"{PART_WORKLOAD.short}p", rep, part_ends)
                if r is None:
                    continue
                r.workload = f"{PART_WORKLOAD.name}, {PARTITIONS} partitions"
                doc_r = r.to_json()
                doc_r["box_idle_share"] = idle_share(before, cpu_times())
                say(f"  box CPU idle during the run: {doc_r['box_idle_share']:.0%}")
                part_runs.append(doc_r)
                save()

        def fits(what: str, est_s: float) -> bool:
            """Whether ``what`` (about ``est_s``) still fits the run's time budget; noted if not."""
            left = size.budget_s - (time.monotonic() - started)
            if left >= est_s * 1.15 + size.budget_s * 0.05:  # + rendering and the stack's shutdown
                return True
            msg = f"{what} skipped: {left / 60:.1f} min of the {size.budget_s / 60:.0f}-min budget left"
            say(msg)
            notes.append(f"{msg}, it takes ~{est_s / 60:.1f} min.")
            return False

        t0 = time.monotonic()  # first: short, and the only evidence that a group of workers scales
        partitioned_rep(1)
        part_s = time.monotonic() - t0
        replay_rep(1)
        prof_path = RESULTS / f"{date}-profile-drain.txt"
        bl = backlog.BacklogResult(size.backlog_n, 0.0, 0.0, 0.0, 0.0, 0.0, None)
        capture = 0.0
        if fits("backlog", size.backlog_n / 2_000):  # capture + drain at ≥ 4k ev/s each
            say(f"backlog: {size.backlog_n:,} events with the workers stopped")
            ins_s, capture = backlog.build_backlog(settings, size.backlog_n, date)
            drain_rate, drain_s, drain_rss, prof = backlog.drain(settings, env, logs, pids, prof_path)
            bl = backlog.BacklogResult(size.backlog_n, ins_s, capture, drain_rate, drain_s, drain_rss, prof)
            say(f"  capture {capture:,.0f} ev/s, drain {drain_rate:,.0f} ev/s")
        # After every phase that reads the orders connector's topics: this one turns its
        # transaction metadata on (`connectors apply` with the orders source atomic).
        if fits("tx modes (atomic vs per-change)", size.tx_est_s):
            try:
                tx_doc = txmodes.run_txmodes(settings, env, size.tx, logs, a.seed, say)
                notes.append(txmodes.NOTE)
            except Exception as exc:  # reported (any cause), not the end of the benchmark
                say(f"  tx modes FAILED: {exc}")
                failures.append(f"tx modes: {exc}")
        # More repetitions for the spread, as long as the budget holds them (rep 1 also ran the stage
        # limits and the JDBC variants: an upper bound for the others).
        if size.reps >= 2 and fits("replay rep 2", rep_s[0]):
            replay_rep(2)
        if size.part_reps >= 2 and fits("partitioned rep 2", part_s):
            partitioned_rep(2)
        for rep in range(3, size.reps + 1):
            if not fits(f"replay rep {rep}", max(rep_s[1:] or rep_s)):
                break
            replay_rep(rep)
    finally:
        sampler.stop()
        if not a.keep_stack:
            stack.down(settings, say)
    summary = report.summarize(runs, lims)
    resources: dict[str, Any] = {
        "peak_rss_mb": {**sampler.peak_rss, "worker-drain": bl.worker_peak_rss_mb},
        "peak_pss_mb": {**sampler.peak_pss, "worker-drain": bl.worker_peak_rss_mb},
        "peak_total_pss_mb": sampler.peak_total_pss,
    }
    if len(series) > 10:
        first = [r for t, r in series if t <= series[0][0] + 60]
        last = [r for t, r in series if t >= series[-1][0] - 60]
        resources["worker_rss_growth_mb"] = sum(last) / len(last) - sum(first) / len(first)
        resources["worker_rss_span_s"] = series[-1][0] - series[0][0]
    doc = {
        "meta": {
            "date": date,
            "quick": q,
            "reps": len(rep_s),
            "partitioned_reps": size.part_reps,
            "budget_min": size.budget_s / 60,
            "port_shift": stack.port_shift(),
            "cpus": os.cpu_count(),
            "seed": a.seed,
            "loadavg_start": f"{load0[0]:.1f}",
            "loadavg_end": f"{os.getloadavg()[0]:.1f}",
            "wall_s": time.monotonic() - started,
            "jdbc_config": peers.BEST_JDBC,
            "loadavg_run": _spread(sampler.loadavg),
        },
        "live": lives,
        "stepped": steps,
        "soak": soak_doc,
        "runs": runs,
        "partitioned": part_runs,
        "partitioned_summary": report.summarize(part_runs, [])["peers"],
        "limits": lims,
        "backlog": bl.to_json(),
        "tx_modes": tx_doc,
        "summary": summary,
        "ratios": report.ratios(summary, capture),
        "partitioned_ratios": report.partitioned(part_runs),
        "resources": resources,
        "profiles": {**profiles, "catch-up drain": profile.summarize(prof_path) if bl.profile else None},
    }
    notes += [
        "Timing: replay throughput = (events - first committed batch) / (first → last data write), the "
        "writes stamped by a statement-level trigger (clock_timestamp) on every sink table of the peer's "
        "own schema, the first batch's size read from a row trigger on the peer's offsets table (its "
        "first transaction). The first batch's events leave the numerator because their read and decode "
        "happen before the window opens. Remaining bias: the JDBC sink stores no offsets in the sink, so "
        "its first put (≤ 5,000 records, its max.poll.records) stays counted — ≤ 5,000/N overstatement "
        "for it; start-up is excluded for everyone. The 'launch → last write' column is the lower bound "
        "(start-up included: JVM task start, Python imports, group join).",
        f"Live latency runs the load generator at a fixed {size.live_rate:g} tx/s (one committed transaction "
        f"per operation, alternating PostgreSQL and MariaDB) for {size.live_s:g} s per workload; "
        "source commit time (Debezium source.ts_ms) → sink commit (audit trigger). "
        "That generator tops out near 100 tx/s, so it "
        "is the low-rate reference; the end-to-end maximum comes from the stepped phase (set-based "
        "transactions paced to a fixed rate, up the ladder until the sink needs more than 3 s to catch up "
        "after a step), and the latency goal is judged at half of that maximum.",
        "Replay data per workload = that workload's live range plus seeded set-based changes "
        f"({size.bulk_n:,}, {bulk.TOP_UP_TX_ROWS:,} rows per transaction, written while the live worker "
        "was stopped; its stored offsets were then advanced past them) on the customers table, copied "
        "byte for byte (same schema ids) into fresh one-partition topics; every peer reads the same copy.",
        f"Partitioned variant: the {PART_WORKLOAD.name} replay copied byte for byte into fresh "
        f"{PARTITIONS}-partition topics, each record on murmur2(key bytes) mod {PARTITIONS} (what Kafka's "
        "Java producer, i.e. Debezium, does for a topic created with that many partitions). changefeed: "
        "1 and 2 `changefeed worker` processes in one consumer group (CPU and RSS summed over both "
        "trees); JDBC sink: tasks.max 1 and 2 (Connect's whole JVM). The box's idle share is "
        "/proc/stat idle+iowait over each run, launch to last write, all other engineers' load included.",
        "JDBC sink consumer: tried Kafka's consumer defaults (500 records a poll, 1 MiB partition fetch; "
        "peer `jdbc-sink-consumer-defaults`, rep 1 only) against the configuration above; the table "
        "shows both, the ratios use `jdbc-sink` (the overrides).",
        "Stage limits: measured once (rep 1) on the first "
        f"{size.limits_n:,} events of each replay (they hold every decoded change in memory).",
        "Stage limits are single-threaded Python (confluent-kafka consume; + fastavro decode; psycopg "
        "UNNEST upsert of the pre-decoded, per-batch de-duplicated rows in 5,000-record transactions).",
        "CPU s / 1k events covers the peer's process tree in its write window (Connect's whole JVM for the "
        "JDBC sink, including the source connectors' idle threads); RSS is the process tree's peak.",
        "changefeed publishes domain events (its default) on top of the upserts; JDBC and the plain loop "
        "only upsert. changefeed's order_view also runs its enrichment; the others write the mapped columns.",
        f"JDBC sink config: {json.dumps(peers.BEST_JDBC)}; field.include.list = the mapped columns.",
        "Debezium capture rate is PostgreSQL only (bulk INSERT ... generate_series in 10k-row transactions).",
        f"Wall time of this run: {doc['meta']['wall_s'] / 60:.1f} min. Code: {_git()}.",
    ]
    doc["notes"] = notes + [f"FAILED run (left out of the medians): {f}" for f in failures]
    out = RESULTS / date
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str))  # first: all measured
    (RESULTS / f"{date}.partial.json").unlink(missing_ok=True)
    render(out.with_suffix(".json"))


def _peer(
    peer: str,
    settings: Settings,
    env: dict[str, str],
    wl: str,
    rep: int,
    ends: dict[str, int],
    logs: Path,
    connect_pid: int,
    spy_to: Path | None,
) -> peers.PeerRun:
    if peer.startswith("changefeed-p4x"):  # the partitioned group: N worker processes
        n = int(peer.removeprefix("changefeed-p4x"))
        return peers.run_changefeed(settings, env, wl, rep, ends, logs, True, None, n, peer)
    if peer.startswith("changefeed"):
        return peers.run_changefeed(settings, env, wl, rep, ends, logs, peer == "changefeed", spy_to)
    if peer.startswith("jdbc-sink-p4t"):
        tasks = int(peer.removeprefix("jdbc-sink-p4t"))
        return peers.run_jdbc(settings, wl, rep, ends, connect_pid, tasks, PARTITIONS, peer)
    if peer in peers.JDBC_VARIANTS:
        return peers.run_jdbc(
            settings, wl, rep, ends, connect_pid, peer=peer, overrides=peers.JDBC_VARIANTS[peer]
        )
    if peer == "jdbc-sink":
        return peers.run_jdbc(settings, wl, rep, ends, connect_pid)
    return peers.run_plain(settings, env, wl, rep, ends)


def cap_ends(ends: dict[str, int], cap: int) -> dict[str, int]:
    """Each topic's end scaled so the total is at most ``cap`` (a prefix of every topic)."""
    total = sum(ends.values())
    if total <= cap:
        return dict(ends)
    return {t: n * cap // total for t, n in ends.items()}


def partitioned_copy(settings: Settings, ends: dict[str, int], run_tag: str) -> dict[str, int]:
    """The one-partition replay topics copied into PARTITIONS-partition ones, keyed as Debezium would."""
    out: dict[str, int] = {}
    for topic, n in ends.items():
        target = replay.replay_topic(f"{PART_WORKLOAD.short}p", topic.rsplit("_", 1)[1], run_tag)
        out[target] = replay.copy_range(
            settings.kafka.bootstrap_servers, topic, target, 0, n, settings.registry.url, PARTITIONS
        )
    return out


def _git() -> str:
    def out(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()

    dirty = len(out("status", "--porcelain").splitlines())
    return f"commit {out('rev-parse', '--short', 'HEAD')}, {dirty} uncommitted path(s) in the working tree"


def _spread(values: list[float]) -> str:
    if not values:
        return "?"
    return f"median {statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f})"


def render(path: Path) -> None:
    """JSON → Markdown + PNG beside it (also ``python -m bench --render results/<date>.json``)."""
    doc = json.loads(path.read_text())
    doc["goals"] = report.goals(doc)  # judged by the current rules, kept in the JSON too
    path.write_text(json.dumps(doc, indent=2, default=str))
    path.with_suffix(".md").write_text(report.markdown(doc))
    plot.plot(doc, path.with_suffix(".png"))
    say(f"wrote {path.with_suffix('')}.json, .md, .png")
    print(report.markdown(doc))


if __name__ == "__main__":
    main()
