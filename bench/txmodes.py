"""Atomic vs per-change transactions (issue 16) for the orders source, side by side in one run.

    python -m bench.txmodes [--quick] [--private]   # this phase alone (``make bench`` runs it too)

Two real ``changefeed worker`` processes of the demo's project, each with its own consumer group
and sink schema, no domain events published: one with the demo's tables file as it is
(per-change), one with the same file plus ``[[sources]] connector = "orders", transactions =
"atomic"``. The orders connector must provide transaction metadata for the atomic one: the phase
runs ``changefeed connectors apply`` with the atomic tables file, which sets
``provide.transaction.metadata=true`` (per-change workers ignore the extra topic and field).
The orders source's topics are read from the beginning (every order complete with its lines
before the load), the others (customers, outbox) from their current end.

1. Fixed rate: ``rate`` orders transactions/s (bench/txload.py: 70 % new orders with their lines
   and outbox row, 30 % an order's line changed and its total recomputed, with an outbox row;
   ``changefeed load`` reaches only ~100 tx/s on this box), both workers running. Latency of
   every ``order_view`` change (the audit-trail method of ``streams.demo.measure``, as in
   bench/live.py): the ``updated_at`` stamp written in the source transaction (MariaDB
   ``NOW(6)``, or ON UPDATE CURRENT_TIMESTAMP(6)) to the audit trigger's ``clock_timestamp()``
   of the sink write that made it visible; split at Debezium's envelope ``ts`` into capture and
   the worker's part (captured → visible), the part the mode changes. order_lines carry no stamp
   (binlog time has whole seconds only) and are not timed. The declared invariants are checked
   on both sink schemas every ``interval`` ms (``streams.verify.invariants.watch``); orders
   already violating before the load are not counted.
2. Throughput: both workers stopped, ``backlog_tx`` transactions written by 6 MariaDB sessions
   (bench/txload.py), then each worker alone drains them (per-change first, then atomic; the
   same records): first stored-offset advance → all offsets at the topics' ends (the first
   flush's records left out), CPU seconds of the worker's process tree over that window, peak
   RSS sampled every 0.5 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import resources, txload, txreport
from bench.live import WorkerProc
from streams.app import worker_conninfo
from streams.demo import measure
from streams.demo.latency import VisibilityIndex, commit_time, key_of, latency_stats
from streams.demo.offsets import Offsets, end_offsets
from streams.demo.project import shipping_mappings
from streams.load import LoadPlan, run_load
from streams.project import load_project
from streams.settings import DEMO_TABLES, Settings
from streams.sinks import conninfo_from
from streams.sinks.ddl import audit_trigger_ddl, control_tables_ddl
from streams.sinks.roles import grant_sink_role
from streams.verify import connections
from streams.verify.invariants import InvariantReport, watch

MODES = ("per-change", "atomic")
SOURCE = "orders"
TX_TOPIC = f"{SOURCE}.transaction"
ORDERS_TABLE = "orders.orders"  # the timed table: its rows carry the generator's commit stamp
WAIT_S = 300.0


@dataclass(frozen=True)
class TxSize:
    backlog_tx: int  # source transactions drained by each mode
    rate: float  # tx/s of the fixed-rate part
    load_s: float
    interval_ms: int = 100  # between invariant rounds


# Full: 60,000 transactions (~270k events). A full run of the phase drained 30,000 at ~9,500
# events/s on a busy box (13.5 and 14.1 s) in 2.1 minutes, a quick one 10,000 at 16-22k events/s
# on a quieter one: each drain runs ≥ 20 s while the worker does ≤ 13,500 events/s, and the phase
# stays under ~4 minutes when the box is busy (a bigger backlog would not, at ~1,800 tx/s written).
# Quick: 10,000 (5,000 drained in 1-2 s, too short a window to compare).
FULL_TX = TxSize(60_000, 200.0, 40.0)
QUICK_TX = TxSize(10_000, 200.0, 15.0)


NOTE = (
    "Transactions (atomic vs per-change): two `changefeed worker`s of the demo project (own group and "
    'sink schema each, domain events off), the atomic one with `[[sources]] connector = "orders", '
    'transactions = "atomic"`; the phase runs `changefeed connectors apply` with that tables file, '
    "which turns the orders connector's transaction metadata on. Fixed rate: the load generator "
    "bench/txload.py (70 % new orders with lines, 30 % a line and the order's total updated, each "
    "with its outbox row; paced every 50 ms) for both workers at once, latency from the generator's "
    "in-transaction updated_at stamp to the audit trigger of the order_view write, the declared "
    "invariants checked on both schemas (orders violating before the load not counted). Drain: "
    "order + lines + outbox transactions written by 6 sessions (50 per round trip) with the workers "
    "stopped, then each worker alone (per-change first), first flush → all offsets stored, the "
    "first flush's records left out of the numerator."
)


def tables_file(dest: Path, mode: str) -> Path:
    """The demo's tables file with the orders source in ``mode`` (any ``[[sources]]`` replaced)."""
    text = DEMO_TABLES.read_text()
    # A [[sources]] table runs to the next array-of-tables header or the end of the file.
    text = re.sub(r"(?ms)^\[\[sources\]\]\n.*?(?=^\[\[|\Z)", "", text)
    text += f'\n[[sources]]\nconnector = "{SOURCE}"\ntransactions = "{mode}"\n'
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"tables-{mode}.toml"
    path.write_text(text)
    return path


@dataclass
class Side:
    """One mode's worker: its tables file, group, sink schema and topics."""

    mode: str
    tables: Path
    group: str
    schema: str
    topics: list[str]  # every topic its worker reads (the atomic one: + the transaction topic)
    env: dict[str, str]

    def start(self, logs: Path) -> WorkerProc:
        w = WorkerProc(self.env, logs / f"bench-tx-{self.mode}.log")
        w.wait_ready()
        return w


def _side(settings: Settings, env: dict[str, str], mode: str, tmp: Path, tag: str) -> Side:
    tables = tables_file(tmp, mode)
    schema, group = f"cf_bench_tx_{mode.replace('-', '')}_{tag}", f"bench-tx-{mode}-{tag}"
    s = settings.model_copy(update={"project": settings.project.model_copy(update={"tables": tables})})
    project = load_project(s, sink_schema=schema)
    topics = list(project.subscriptions) + ([TX_TOPIC] if mode == "atomic" else [])
    side_env = {
        **env,
        "CHANGEFEED_PROJECT__TABLES": str(tables),
        "CHANGEFEED_PROJECT__CONNECTORS_DIR": str(settings.project.connectors_dir.resolve()),
        "CHANGEFEED_WORKER__APP_ID": group,
        "CHANGEFEED_WORKER__METRICS_PORT": "0",
        "CHANGEFEED_WORKER__HEAL_CONNECTORS": "false",
        "CHANGEFEED_PIPELINE__SINK_SCHEMA": schema,
        "CHANGEFEED_PIPELINE__PUBLISH_DOMAIN_EVENTS": "false",
    }
    return Side(mode, tables, group, schema, topics, side_env)


def apply_connectors(env: dict[str, str], tables: Path) -> None:
    """``changefeed connectors apply`` with the atomic tables file: transaction metadata on."""
    done = subprocess.run(
        [sys.executable, "-m", "streams", "connectors", "apply"],
        env={**env, "CHANGEFEED_PROJECT__TABLES": str(tables)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        msg = f"changefeed connectors apply failed:\n{done.stdout}{done.stderr}"
        raise RuntimeError(msg)


def ensure_transaction_topic(settings: Settings, seed: int) -> float:
    """Until the orders connector streams with transaction metadata: a transaction written now
    (again every 5 s: the connector task restarts with its new config) adds records to
    ``orders.transaction`` (Debezium creates the topic with the first one)."""
    started = time.monotonic()
    before = end_offsets(settings.kafka.bootstrap_servers).get((TX_TOPIC, 0), 0)
    while True:
        run_load(settings, LoadPlan(rate=10.0, duration_s=0.1, sources=(SOURCE,), seed=seed))
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if end_offsets(settings.kafka.bootstrap_servers).get((TX_TOPIC, 0), 0) > before:
                return time.monotonic() - started
            time.sleep(0.5)  # polling the topic's end
        if time.monotonic() - started > 120:
            msg = f"{TX_TOPIC} got no record within 120 s: does the orders connector run?"
            raise RuntimeError(msg)


def prepare(settings: Settings, side: Side) -> None:
    """Schema granted to the workers' login; its control tables created by that login (so the
    worker owns them). The orders source's topics are read from the beginning (every order in
    the sink complete with its lines: the invariants hold before the load); the others (the
    customers the benchmark bulk-loaded, the outbox) start at their current end."""
    grant_sink_role(settings, side.schema)
    ends = end_offsets(settings.kafka.bootstrap_servers)
    with psycopg.connect(worker_conninfo(settings, side.group), autocommit=True) as conn, conn.transaction():
        for stmt in control_tables_ddl(side.schema):
            conn.execute(stmt)
        for (topic, partition), end in sorted(ends.items()):
            if topic in side.topics and not topic.startswith(f"{SOURCE}."):
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (consumer_group, topic, partition, next_offset)"
                        " VALUES (%s, %s, %s, %s)"
                    ).format(sql.Identifier(side.schema, "changefeed_offsets")),
                    (side.group, topic, partition, end),
                )


def stored(sink: psycopg.Connection[Any], side: Side) -> int:
    row = sink.execute(
        sql.SQL(
            "SELECT coalesce(sum(next_offset), 0) FROM {} WHERE consumer_group = %s AND topic = ANY(%s)"
        ).format(sql.Identifier(side.schema, "changefeed_offsets")),
        (side.group, side.topics),
    ).fetchone()
    sink.rollback()
    return int(row[0]) if row else 0


def target(ends: Offsets, side: Side) -> int:
    return sum(n for (t, _), n in ends.items() if t in side.topics)


def wait_caught_up(
    sink: psycopg.Connection[Any], side: Side, goal: int, alive: Callable[[], bool]
) -> tuple[float, float] | None:
    """Until ``side``'s stored offsets reach ``goal``: (first advance, done) monotonic times."""
    start = stored(sink, side)
    first: float | None = None
    deadline = time.monotonic() + WAIT_S
    while True:
        done = stored(sink, side)
        now = time.monotonic()
        if first is None and done > start:
            first = now
        if done >= goal:
            return (first or now, now)
        if not alive() or now > deadline:
            return None
        time.sleep(0.1)  # polling the sink's stored offsets


def install_audit(sink: psycopg.Connection[Any], side: Side, timeout_s: float = 60.0) -> None:
    """Audit trigger on the side's order_view once its worker created it (the sink side of latency)."""
    m = next(x for x in shipping_mappings(side.schema) if x.source_table == ORDERS_TABLE)
    deadline = time.monotonic() + timeout_s
    while True:
        row = sink.execute("SELECT to_regclass(%s)", (f'"{side.schema}"."{m.sink_table}"',)).fetchone()
        sink.rollback()
        if row and row[0] is not None:
            break
        if time.monotonic() > deadline:
            msg = f"{side.schema}.{m.sink_table} not created by its worker within {timeout_s:g} s"
            raise RuntimeError(msg)
        time.sleep(0.2)
    with sink.transaction():
        for stmt in audit_trigger_ddl(m, side.schema):
            sink.execute(stmt)


def latency(
    settings: Settings, sink: psycopg.Connection[Any], side: Side, before: Offsets, after: Offsets, since: Any
) -> dict[str, float]:
    """Per order_view change: commit stamp → visible in the sink (the headline), and its two parts:
    commit → Debezium processed it (envelope ``ts``) and Debezium → visible (the worker's part,
    the one the transaction mode changes)."""
    [m] = [m for m in shipping_mappings(side.schema) if m.source_table == ORDERS_TABLE]
    label = f"{m.sink_schema}.{m.sink_table}"
    events = measure.read_changes(
        settings.kafka.bootstrap_servers, settings.registry.url, "orders.orders.orders", before, after
    )
    index = VisibilityIndex(measure.applied_writes([m], measure.audit_entries(sink, since, side.schema)))
    total: list[float] = []
    capture: list[float] = []
    worker: list[float] = []
    unmatched = 0
    for e in events:
        key, committed = key_of(m, e), commit_time(e)
        if key is None or committed is None or e.position is None:
            continue  # deletes: no stamp (the binlog clock has whole seconds only)
        seen = index.visible_at(label, key, e.position.to_bytes())
        if seen is None:
            unmatched += 1
            continue
        total.append(max(0.0, (seen - committed).total_seconds()))
        if e.ts is not None:
            capture.append(max(0.0, (e.ts - committed).total_seconds()))
            worker.append(max(0.0, (seen - e.ts).total_seconds()))
    t, c, w = (latency_stats(x, 0) for x in (total, capture, worker))
    return {"p50_ms": t.p50_ms, "p95_ms": t.p95_ms, "p99_ms": t.p99_ms, "max_ms": t.max_ms,
            "measured": t.measured, "unmatched": unmatched,
            "capture_p50_ms": c.p50_ms, "capture_p99_ms": c.p99_ms,
            "worker_p50_ms": w.p50_ms, "worker_p95_ms": w.p95_ms, "worker_p99_ms": w.p99_ms}  # fmt: skip


def _violations(r: InvariantReport) -> dict[str, Any]:
    return {
        "rounds": r.rounds,
        "violating_rounds": r.violating_rounds,
        "by_invariant": {
            t.name: {
                "violating_rounds": t.violating_rounds,
                "violating_rows": t.violations,
                "distinct_keys": len(t.keys),
                "examples": t.examples[:2],
                "error": t.error,
            }
            for t in r.tallies
        },
    }


def fixed_rate(
    settings: Settings, sides: list[Side], size: TxSize, seed: int, logs: Path, say: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Both workers running under one fixed-rate load: latency, invariants, CPU, RSS."""
    out: dict[str, dict[str, Any]] = {s.mode: {} for s in sides}
    workers = {s.mode: s.start(logs) for s in sides}
    pids = {s.mode: workers[s.mode].pid for s in sides}
    sampler = resources.Sampler(lambda: pids, 0.5).start()
    dsn = conninfo_from(settings.sink_postgres)
    specs = load_project(settings).file.invariants
    try:
        with psycopg.connect(dsn) as sink:
            ends = end_offsets(settings.kafka.bootstrap_servers)
            t0 = time.monotonic()
            for s in sides:
                if wait_caught_up(sink, s, target(ends, s), workers[s.mode].alive) is None:
                    msg = f"{s.mode} worker did not catch up with the orders topics' history; see {logs}"
                    raise RuntimeError(msg)
            say(f"  both workers caught up with the orders history in {time.monotonic() - t0:.1f} s")
            for s in sides:
                install_audit(sink, s)
            baselines = {s.mode: watch(sink, specs, s.schema) for s in sides}
            stop = threading.Event()
            reports: dict[str, InvariantReport] = {}

            def check(side: Side) -> None:
                conn = connections.postgres(settings.sink_postgres, f"bench-tx-check-{side.mode}")
                try:
                    reports[side.mode] = watch(
                        conn,
                        specs,
                        side.schema,
                        WAIT_S * 4,
                        size.interval_ms,
                        stop,
                        baseline=baselines[side.mode],
                    )
                finally:
                    conn.close()

            threads = [threading.Thread(target=check, args=(s,), daemon=True) for s in sides]
            for t in threads:
                t.start()
            before = end_offsets(settings.kafka.bootstrap_servers)
            cpu0 = {m: resources.cpu_seconds(p) for m, p in pids.items()}
            load = txload.paced(settings, size.rate, size.load_s, seed)
            after = _settled(settings)  # Debezium has captured the whole load (it lags under it)
            try:
                for s in sides:
                    done = wait_caught_up(sink, s, target(after, s), workers[s.mode].alive)
                    if done is None:
                        msg = f"{s.mode} worker did not catch up with the fixed-rate load; see {logs}"
                        raise RuntimeError(msg)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
            events = target(after, sides[0]) - target(before, sides[0])
            for s in sides:
                o = out[s.mode]
                o["load"] = {k: v for k, v in load.items() if k != "started_at"}
                o["latency"] = latency(settings, sink, s, before, after, load["started_at"])
                o["invariants"] = (
                    _violations(reports[s.mode]) if s.mode in reports else {"error": "no report"}
                )
                o["cpu_s_per_1k_ev"] = (
                    (resources.cpu_seconds(pids[s.mode]) - cpu0[s.mode]) / max(1, events) * 1000
                )
                say(
                    f"  {s.mode}: latency {o['latency']}, invariant-violating rounds "
                    f"{o['invariants'].get('violating_rounds')} of {o['invariants'].get('rounds')}"
                )
    finally:
        sampler.stop()
        for w in workers.values():
            w.stop()
    for s in sides:
        out[s.mode]["peak_rss_mb"] = round(sampler.peak_rss.get(s.mode, 0.0), 1)
    return out


def drain(settings: Settings, side: Side, goal: int, events: int, n_tx: int, logs: Path) -> dict[str, Any]:
    """One worker alone drains the backlog: events/s, tx/s, CPU s per 1k events, peak RSS."""
    worker = WorkerProc(side.env, logs / f"bench-tx-{side.mode}.log")
    sampler = resources.Sampler(lambda: {"w": worker.pid}, 0.5).start()
    cpu: list[float] = []
    launched = time.monotonic()
    try:
        with psycopg.connect(conninfo_from(settings.sink_postgres)) as sink:
            start = stored(sink, side)
            while (first := stored(sink, side)) == start:  # the window opens with the first flush
                if worker.proc.poll() is not None:
                    msg = f"{side.mode} drain worker exited; see {logs}"
                    raise RuntimeError(msg)
                time.sleep(0.05)
            cpu.append(resources.cpu_seconds(worker.pid))
            done = wait_caught_up(sink, side, goal, worker.alive)
            if done is None:
                msg = f"{side.mode} worker did not drain the backlog within {WAIT_S:g} s; see {logs}"
                raise RuntimeError(msg)
            cpu.append(resources.cpu_seconds(worker.pid))
    finally:
        sampler.stop()
        worker.stop()
    # The first flush's records were read and decoded before the window opened: they leave the
    # numerator (as in the replay runs); its share of the transactions likewise.
    secs = max(1e-3, done[1] - done[0])
    share = max(0, goal - first) / max(1, goal - start)
    counted = events * share
    return {
        "seconds": round(secs, 2),
        "launch_to_done_s": round(done[1] - launched, 2),
        "events": events,
        "events_in_window": round(counted),
        "events_s": round(counted / secs, 1),
        "tx_s": round(n_tx * share / secs, 1),
        "cpu_s_per_1k_ev": round((cpu[1] - cpu[0]) / max(1, counted) * 1000, 4),
        "peak_rss_mb": round(sampler.peak_rss.get("w", 0.0), 1),
    }


def ratios(modes: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """atomic / per-change of each headline number (None where per-change's is 0)."""
    a, p = modes.get("atomic", {}), modes.get("per-change", {})

    def r(path: tuple[str, ...]) -> float | None:
        x: Any = a
        y: Any = p
        for k in path:
            x, y = (x or {}).get(k), (y or {}).get(k)
        if not isinstance(x, int | float) or not isinstance(y, int | float) or not y:
            return None
        return round(x / y, 3)

    return {
        "drain_events_s": r(("drain", "events_s")),
        "drain_tx_s": r(("drain", "tx_s")),
        "drain_cpu_s_per_1k_ev": r(("drain", "cpu_s_per_1k_ev")),
        "drain_peak_rss_mb": r(("drain", "peak_rss_mb")),
        "p50_ms": r(("fixed_rate", "latency", "p50_ms")),
        "p95_ms": r(("fixed_rate", "latency", "p95_ms")),
        "p99_ms": r(("fixed_rate", "latency", "p99_ms")),
        "worker_p50_ms": r(("fixed_rate", "latency", "worker_p50_ms")),
        "worker_p99_ms": r(("fixed_rate", "latency", "worker_p99_ms")),
        "fixed_rate_peak_rss_mb": r(("fixed_rate", "peak_rss_mb")),
    }


def run_txmodes(
    settings: Settings, env: dict[str, str], size: TxSize, logs: Path, seed: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """The whole phase against the stack ``settings`` names; the results document's ``tx_modes``."""
    started = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-tx-{tag}-"))
    logs.mkdir(parents=True, exist_ok=True)
    sides = [_side(settings, env, m, tmp, tag) for m in MODES]
    atomic = next(s for s in sides if s.mode == "atomic")
    say("tx modes: `changefeed connectors apply` with orders atomic (transaction metadata on)")
    apply_connectors(env, atomic.tables)
    say(f"  {TX_TOPIC} has records after {ensure_transaction_topic(settings, seed):.1f} s")
    doc: dict[str, Any] = {"size": size.__dict__, "schemas": {s.mode: s.schema for s in sides}}
    modes: dict[str, dict[str, Any]] = {s.mode: {} for s in sides}
    try:
        for s in sides:
            prepare(settings, s)
        say(f"tx modes: fixed rate {size.rate:g} tx/s for {size.load_s:g} s, both workers")
        for mode, res in fixed_rate(settings, sides, size, seed, logs, say).items():
            modes[mode]["fixed_rate"] = res
        say(f"tx modes: backlog of {size.backlog_tx:,} orders transactions, workers stopped")
        before = end_offsets(settings.kafka.bootstrap_servers)
        doc["backlog"] = txload.write_backlog(settings, size.backlog_tx, seed + 1)
        after = _settled(settings)
        for s in sides:
            # Change events of the declared tables and the outbox (the transaction topic's
            # BEGIN/END records are not counted as events).
            events = sum(
                n - before.get(tp, 0) for tp, n in after.items() if tp[0] in s.topics and tp[0] != TX_TOPIC
            )
            say(f"tx modes: {s.mode} worker drains {events:,} events")
            modes[s.mode]["drain"] = drain(settings, s, target(after, s), events, size.backlog_tx, logs)
            say(f"  {modes[s.mode]['drain']}")
    finally:
        _drop(settings, sides)
    doc["modes"] = modes
    doc["ratios"] = ratios(modes)
    doc["wall_s"] = round(time.monotonic() - started, 1)
    return doc


def _settled(settings: Settings, quiet_s: float = 2.0) -> Offsets:
    """End offsets once they stopped moving for ``quiet_s`` (Debezium has streamed the backlog)."""
    last = end_offsets(settings.kafka.bootstrap_servers)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = end_offsets(settings.kafka.bootstrap_servers)
        if now == last:
            return now
        last = now
    return last


def _drop(settings: Settings, sides: list[Side]) -> None:
    with psycopg.connect(conninfo_from(settings.sink_postgres), autocommit=True) as conn:
        for s in sides:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s.schema)))


def say(line: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", flush=True)


def main() -> None:
    from bench import stack

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--private", action="store_true", help="on the benchmark's private stack (up, then down)")
    ap.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "changefeed-bench-tx")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--out", type=Path, help="write the JSON here too")
    ap.add_argument("--backlog-tx", type=int, help="override the mode's backlog size")
    a = ap.parse_args()
    size = QUICK_TX if a.quick else FULL_TX
    if a.backlog_tx:
        size = dataclasses.replace(size, backlog_tx=a.backlog_tx)
    if a.private:
        settings = stack.up(a.root, say)
        env = stack.bench_env(settings)
    else:
        settings = Settings()
        env = {**os.environ, "CHANGEFEED_WORKER__METRICS_PORT": "0"}
    try:
        doc = run_txmodes(settings, env, size, a.root / "logs", a.seed, say)
    finally:
        if a.private:
            stack.down(settings, say)
    text = json.dumps(doc, indent=2, default=str)
    if a.out:
        a.out.write_text(text)
        a.out.with_suffix(".md").write_text("\n".join(txreport.markdown(doc)) + "\n")
    print(text)
    print("\n".join(txreport.markdown(doc)))


if __name__ == "__main__":
    main()
