"""How many half-applied source transactions a sink reader sees: the declared invariants under load.

    python -m bench.invariants --rate 250 --duration 30

Against the running stack, without touching its demo tables: one worker of the project (its own
consumer group, a fresh sink schema, no domain events published) consumes the orders connector's
topics; once it has caught up, the tables file's invariants are checked every ``--interval-ms``
on one snapshot per round while ``changefeed load --source orders`` writes order + lines
transactions, until the worker has drained the load. Orders that already broke an invariant
before the load (a source row written that way) are left out, so what is counted is what the
pipeline showed. The mode measured is whatever the tables file declares for the orders source.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from streams.demo.offsets import end_offsets
from streams.demo.steps import Workers
from streams.load import LoadPlan, run_load
from streams.project import load_project
from streams.project.invariants import InvariantSpec
from streams.settings import Settings
from streams.sinks import load_offsets
from streams.sinks.roles import grant_sink_role
from streams.verify import connections
from streams.verify.invariants import InvariantReport, watch

CATCH_UP_S = 600.0


def _caught_up(
    settings: Settings, sink: psycopg.Connection[Any], group: str, schema: str, topics: list[str]
) -> bool:
    ends = end_offsets(settings.kafka.bootstrap_servers)
    try:
        for topic in topics:
            stored = load_offsets(sink, group, topic, schema)
            if any(stored.get(p, 0) < end for (t, p), end in ends.items() if t == topic and end > 0):
                return False
        return True
    except psycopg.errors.UndefinedTable:
        return False  # the worker has not created its tables yet
    finally:
        sink.rollback()


def _wait(check: Any, timeout_s: float, what: str, workers: Workers) -> float:
    started = time.monotonic()
    while not check():
        workers.check_alive()
        if time.monotonic() - started > timeout_s:
            msg = f"timed out after {timeout_s:.0f} s waiting for {what}"
            raise SystemExit(msg)
        time.sleep(0.2)  # polling the sink's stored offsets
    return time.monotonic() - started


def _without(specs: tuple[InvariantSpec, ...], orders: list[int]) -> list[InvariantSpec]:
    """Each invariant minus the orders that broke it before the load (first column: order_id)."""
    listed = "{{" + ",".join(str(int(o)) for o in orders or [0]) + "}}"  # ints only
    where = f" v WHERE v.order_id <> ALL('{listed}'::bigint[])"
    wrap = "SELECT * FROM ({}){}"  # the user's own query text (a template), and integers
    return [s.model_copy(update={"sql": wrap.format(s.sql, where)}) for s in specs]


def _row(t: Any) -> dict[str, Any]:
    return {"rounds": t.rounds, "violating_rounds": t.violating_rounds, "violating_rows": t.violations,
            "distinct_keys": len(t.keys), "examples": t.examples, "error": t.error}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=250.0, help="orders transactions per second")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="0: a random seed")
    args = ap.parse_args()
    settings = Settings()
    tag = uuid.uuid4().hex[:8]
    schema, group = f"cf_bench_inv_{tag}", f"bench-invariants-{tag}"
    project = load_project(settings, sink_schema=schema)
    topics = [t for t in project.subscriptions if t.startswith("orders.")]
    specs = project.file.invariants
    grant_sink_role(settings, schema)
    env = {
        "CHANGEFEED_WORKER__APP_ID": group,
        "CHANGEFEED_WORKER__METRICS_PORT": "0",
        "CHANGEFEED_WORKER__HEAL_CONNECTORS": "false",
        "CHANGEFEED_PIPELINE__SINK_SCHEMA": schema,
        "CHANGEFEED_PIPELINE__TOPICS": json.dumps(topics),
        "CHANGEFEED_PIPELINE__PUBLISH_DOMAIN_EVENTS": "false",
    }
    workers = Workers(Path(tempfile.mkdtemp(prefix=f"bench-invariants-{tag}-")))
    sink = connections.postgres(settings.sink_postgres, "bench-invariants")
    out: dict[str, Any] = {"schema": schema, "topics": topics}
    try:
        workers.start(1, env=env)
        caught = lambda: _caught_up(settings, sink, group, schema, topics)  # noqa: E731
        out["catch_up_s"] = round(_wait(caught, CATCH_UP_S, "the worker to catch up", workers), 1)
        before = watch(sink, specs, schema)
        legacy = sorted({int(k[0]) for t in before.tallies for k in t.keys})
        out["left_out_orders"] = len(legacy)
        scoped = _without(specs, legacy)
        stop, found = threading.Event(), {}
        checker = connections.postgres(settings.sink_postgres, "bench-invariants-checker")

        def rounds() -> None:
            found["report"] = watch(checker, scoped, schema, CATCH_UP_S * 10, args.interval_ms, stop)

        thread = threading.Thread(target=rounds)
        thread.start()
        seed = args.seed or uuid.uuid4().int % 100_000
        plan = LoadPlan(rate=args.rate, duration_s=args.duration, sources=("orders",), seed=seed)
        try:
            report = run_load(settings, plan)
            out["load"] = {
                "transactions": report.tally.total,
                "seconds": round(report.elapsed_s, 1),
                "achieved_tx_s": round(report.achieved_rate, 1),
                "target_tx_s": args.rate,
            }
            out["drain_s"] = round(_wait(caught, CATCH_UP_S, "the worker to drain the load", workers), 1)
        finally:
            stop.set()
            thread.join()
            checker.close()
        during: InvariantReport = found["report"]
        out["rounds"], out["seconds"] = during.rounds, round(during.seconds, 1)
        out["during"] = {t.name: _row(t) for t in during.tallies}
        out["after_drain"] = {t.name: len(t.keys) for t in watch(sink, scoped, schema).tallies}
    finally:
        workers.stop()
        sink.rollback()
        sink.autocommit = True
        sink.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        sink.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
