"""`changefeed demo`: the whole mission end to end, under load, proven by the oracle.

up → migrate → register schemas → apply connectors → two workers → wait for the sink tables →
audit triggers (for latency) → load → verify --wait → summary. The stack keeps running; only
the worker processes this demo started are stopped at the end (unless asked to keep them).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaAdminClient
from psycopg import sql

from streams.demo import measure, steps
from streams.demo.bus import bridge_counts, bus_summary, demo_bus_env, wait_for_bus, with_bus
from streams.demo.dashboard import DemoDashboard
from streams.demo.invariants import DemoInvariants
from streams.demo.offsets import Offsets, TopicCounts, end_offsets
from streams.demo.ryw import ReadYourWrites
from streams.demo.summary import DemoSummary
from streams.errors import StackError
from streams.load import LoadPlan, LoadReport, Mix, Written, run_load
from streams.project import load_project
from streams.settings import Settings
from streams.sinks import audit_trigger_ddl, control_tables_ddl, load_offsets
from streams.sinks.ddl import CONFLICTS_TABLE
from streams.sinks.mapping import TableMapping
from streams.stack.paths import StackPaths, repo_root
from streams.verify import VerifyOptions, open_databases, project_mappings, verify_wait
from streams.verify.compare import TableResult
from streams.verify.lag import topics_for

Say = Callable[[str], None]
# Workers create the sink tables on start; a cold Faust start with two members rebalancing takes
# ~10-20 s on 2 cores.
TABLES_TIMEOUT_S = 90.0
# Two workers join, sync and settle in ~10-20 s; a loaded 2-core box takes longer.
GROUP_TIMEOUT_S = 90.0
WARM_UP_TX = 10  # in 1 s: both sources, so every change topic gets a first record
WARM_UP_SEED = 7_919  # not the measured load's seed, which stays reproducible


@dataclass(frozen=True)
class DemoOptions:
    plan: LoadPlan
    verify_timeout_s: float = 120.0
    workers: int = 2
    keep_workers: bool = False
    skip_setup: bool = False  # the stack and connectors are known to be ready (tests)
    # The event bus: the notifications consumer and the NATS and Redis bridges (streams/demo/bus.py).
    bus: bool = True


def connector_prefixes(directory: Path) -> tuple[str, ...]:
    """``topic.prefix`` of every connector definition, with the dot: which topics are row changes."""
    out = []
    for path in sorted(directory.glob("*.json")):
        prefix = json.loads(path.read_text(encoding="utf-8")).get("config", {}).get("topic.prefix")
        if prefix:
            out.append(f"{prefix}.")
    return tuple(out)


def wait_for_tables(
    sink: psycopg.Connection[Any], mappings: list[TableMapping], workers: steps.Workers
) -> None:
    deadline = time.monotonic() + TABLES_TIMEOUT_S
    while time.monotonic() < deadline:
        workers.check_alive()
        missing = [
            m.sink_table
            for m in mappings
            if (row := sink.execute("SELECT to_regclass(%s)", [f"{m.sink_schema}.{m.sink_table}"]).fetchone())
            is None
            or row[0] is None
        ]
        sink.rollback()
        if not missing:
            return
        time.sleep(0.5)  # polling a catalog lookup; cheap
    msg = f"the workers did not create {missing} within {TABLES_TIMEOUT_S:.0f} s"
    raise StackError(msg)


def wait_for_group(settings: Settings, members: int, workers: steps.Workers) -> None:
    """Start the load only once every worker holds its partitions: otherwise the first seconds
    of latency measure the group's join and rebalance, not the pipeline."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    group = settings.worker.app_id
    try:
        deadline = time.monotonic() + GROUP_TIMEOUT_S
        while time.monotonic() < deadline:
            workers.check_alive()
            state = admin.describe_groups([group]).get(group, {})
            if state.get("group_state") == "Stable" and len(state.get("members", [])) == members:
                return
            time.sleep(0.5)  # polling the group coordinator
    finally:
        admin.close()
    msg = f"the {members} workers did not form a stable group {group!r} within {GROUP_TIMEOUT_S:.0f} s"
    raise StackError(msg)


def warm_up(settings: Settings, sink: psycopg.Connection[Any], workers: steps.Workers, say: Say) -> None:
    """A few inserts before the measured load, until the workers applied a change of every topic.

    On a fresh stack the change topics do not exist until their first change (the tables are
    empty, so the snapshot writes nothing); the workers find them at their next metadata refresh
    and rebalance. Measured, that put 2.2 s of topic discovery into the first seconds of load
    (p95 0.97 s, p99 2.3 s, all of it in the apply stage). A running deployment has its topics.
    """
    group, schema = settings.worker.app_id, settings.pipeline.sink_schema
    topics = settings.pipeline.topics or load_project(settings).subscriptions

    def missing() -> list[str]:
        ends = end_offsets(settings.kafka.bootstrap_servers)
        out = []
        for topic in topics:
            parts = [p for (t, p), end in ends.items() if t == topic and end > 0]
            stored = load_offsets(sink, group, topic, schema) if parts else {}
            if not parts or any(p not in stored for p in parts):
                out.append(topic)
        sink.rollback()
        return out

    if not missing():
        return
    plan = LoadPlan(rate=WARM_UP_TX, duration_s=1.0, mix=Mix(100, 0, 0), seed=WARM_UP_SEED)
    say(f"warm-up: {WARM_UP_TX} inserts, until the workers hold and applied every change topic")
    run_load(settings, plan)
    deadline = time.monotonic() + GROUP_TIMEOUT_S
    while (left := missing()) and time.monotonic() < deadline:
        workers.check_alive()
        time.sleep(0.5)  # polling the sink's stored offsets
    if left:
        msg = f"the workers applied nothing from {', '.join(left)} within {GROUP_TIMEOUT_S:.0f} s"
        raise StackError(msg)


def install_audit(sink: psycopg.Connection[Any], mappings: list[TableMapping]) -> None:
    """The audit trigger records each sink write's time and position: the sink side of latency."""
    with sink.transaction():
        for stmt in control_tables_ddl("public"):
            sink.execute(stmt)
        for m in mappings:
            for stmt in audit_trigger_ddl(m, "public"):
                sink.execute(stmt)


def _count(sink: psycopg.Connection[Any], query: sql.Composed, params: list[Any]) -> int:
    row = sink.execute(query, params).fetchone()
    sink.rollback()
    return int(row[0]) if row else 0


def summarize(
    settings: Settings,
    mappings: list[TableMapping],
    sink: psycopg.Connection[Any],
    report: LoadReport,
    before: Offsets,
    verified: bool,
    demo_started: float,
) -> DemoSummary:
    after = end_offsets(settings.kafka.bootstrap_servers)
    counts = TopicCounts.between(before, after, connector_prefixes(repo_root() / "connectors"))
    topics = {t for t, _ in after}
    events = {}
    for m in mappings:
        found = topics_for([m], topics)
        events[m.source_table] = [
            e
            for t in found
            for e in measure.read_changes(
                settings.kafka.bootstrap_servers, settings.registry.url, t, before, after
            )
        ]
    entries = measure.audit_entries(sink, report.started_at)
    applied = measure.applied_writes(mappings, entries)
    latency, last_seen = measure.end_to_end(mappings, events, applied)
    rows_now = {
        m.sink_table: _count(
            sink, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(m.sink_schema, m.sink_table)), []
        )
        for m in mappings
    }
    conflicts = _count(
        sink,
        sql.SQL("SELECT count(*) FROM {} WHERE at >= %s").format(sql.Identifier("public", CONFLICTS_TABLE)),
        [report.started_at],
    )
    pipeline_s = ((last_seen or report.finished_at) - report.started_at).total_seconds()
    return DemoSummary(
        load_transactions=report.tally.total,
        load_seconds=report.elapsed_s,
        counts=counts,
        rows_applied=len(entries),
        rows_now=rows_now,
        conflicts=conflicts,
        latency=latency,
        stages=measure.by_stage(mappings, events, applied),
        pipeline_seconds=pipeline_s,
        verified=verified,
        total_seconds=time.monotonic() - demo_started,
    )


def run_demo(
    settings: Settings,
    options: DemoOptions,
    say: Say,
    on_write: Callable[[Written], None] | None = None,
    on_round: Callable[[int, list[TableResult]], None] | None = None,
) -> tuple[DemoSummary, list[TableResult]]:
    started = time.monotonic()
    state_dir = settings.stack.state_dir
    env = demo_bus_env(settings) if options.bus else {}
    if options.bus:
        settings = with_bus(settings)
    if not options.skip_setup:
        for step in steps.SETUP_STEPS:
            steps.run_step(step, say, state_dir, env)
    mappings = project_mappings(settings)
    paths = StackPaths(state_dir, settings.stack.cache_dir)
    workers = steps.Workers(paths.logs)
    board = DemoDashboard.start(paths.logs, state_dir)
    say(f"dashboard: {board.url} (live while the demo runs)")
    try:
        for log in workers.start(options.workers, state_dir, env):
            say(f"worker started, log: {log}")
        with open_databases(settings) as dbs:
            wait_for_tables(dbs.sink, mappings, workers)
            wait_for_group(settings, options.workers, workers)
            warm_up(settings, dbs.sink, workers, say)
            install_audit(dbs.sink, mappings)
            before = end_offsets(settings.kafka.bootstrap_servers)
            bridges_before = bridge_counts(settings) if options.bus else None
            say(f"load: {options.plan.rate:g} tx/s for {options.plan.duration_s:g} s, mix {options.plan.mix}")
            ryw = ReadYourWrites(settings)  # write → token → gRPC read pairs beside the load
            ryw.start()
            checker = DemoInvariants(settings, settings.pipeline.sink_schema)  # rounds until verify passes
            checker.start()
            try:
                try:
                    report = run_load(settings, options.plan, on_write)
                finally:
                    ryw_stats = ryw.stop()
                workers.check_alive()
                say(f"verify --wait {options.verify_timeout_s:g}")
                results = verify_wait(dbs, mappings, VerifyOptions(), options.verify_timeout_s, on_round)
            finally:
                during, checker_error = checker.stop()
            verified = all(r.ok for r in results)
            summary = summarize(settings, mappings, dbs.sink, report, before, verified, started)
            summary = dataclasses.replace(
                summary,
                invariants=during,
                invariants_after=checker.final(),
                invariants_error=checker_error,
                invariants_mode=checker.mode,
                invariants_ignored=checker.ignored,
            )
            if bridges_before is not None:
                domain = sorted(load_project(settings).registry.domain_topics)
                if not wait_for_bus(settings, f"{settings.worker.app_id}-bus", domain):
                    say("the event bus had not caught up with the domain topics; its counts are partial")
                bus = bus_summary(settings, report.started_at, bridges_before)
                summary = dataclasses.replace(summary, bus=bus)
            summary = dataclasses.replace(summary, ryw=ryw_stats)
    finally:
        if not options.keep_workers:
            workers.stop()
            board.stop()
    return summary, results
