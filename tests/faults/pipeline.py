"""The whole pipeline on the private fault stack: setup, worker processes, load, and the oracle.

Shared by every worker-level fault scenario (K1, K2, K5-K7 here; bad-input scenarios elsewhere).
API (kept backwards compatible; add, never change):

- ``fault_pipeline`` (session fixture) -> ``FaultPipeline``: on the fault stack it runs
  ``changefeed services migrate``, ``schemas register`` and ``connectors apply`` as subprocesses
  with ``env_for(fault_settings)``, creates the sink tables with the audit triggers installed,
  and waits until the change topics exist.
- ``FaultPipeline.workers(...)`` -> ``Workers``: ``changefeed worker`` subprocesses (logs under
  ``<fault state dir>/logs/workers``) with ``start`` / ``kill`` (SIGKILL) / ``pause`` (SIGSTOP) /
  ``resume`` (SIGCONT) / ``restart`` / ``stop``. Use as a context manager: every worker it
  started is stopped on exit. Only processes started here are ever signalled.
- ``run_load(rate, duration, ...)`` (blocking, returns ``LoadReport``) and ``start_load(...)``
  (a background ``LoadRun``) drive both sources with the ``changefeed load`` generator.
- The oracle: ``converge(timeout)`` -> verify results; ``regressions()`` (audit: rows that moved to
  an older position, ever); ``dlq_counts()``; ``lag()`` / ``wait_lag_zero(timeout)``;
  ``audit_mark()`` / ``audit_writes(since)``; ``dlq_records(topic)`` (with headers);
  ``table_hashes()``; ``oracle(...)`` asserts all of it.
- Stack faults: ``service_pid(name)``, ``stop_service(name)``, ``restart_services()``
  (pid files of the fault stack only).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from psycopg import sql

from streams.app import sink_application_name
from streams.demo.project import shipping_mappings, shipping_sink
from streams.load import LoadPlan, LoadReport, Mix, run_load
from streams.pipeline import dlq_replay as dlq
from streams.project import load_project
from streams.settings import Settings
from streams.sinks import AUDIT_TABLE, OFFSETS_TABLE, conninfo_from
from streams.sinks.mapping import DeletePolicy
from streams.sinks.roles import worker_login_conninfo
from streams.stack import process, supervisor
from streams.stack.paths import repo_root
from streams.stack.services import StackContext
from streams.verify import VerifyOptions, open_databases, verify_wait
from streams.verify.compare import TableResult
from tests.polling import poll
from tests.stack_fixtures import env_for

# One consumer group for every fault scenario: each picks up where the previous one left off
# instead of replaying the whole history (K7 replays on purpose).
GROUP = "changefeed-fault-workers"  # not "changefeed-faults": the fault stack's Connect group
# Setup commands on a fresh stack: Connect answers 409 while rebalancing, apply retries.
SETUP_TIMEOUT_S = 300.0
# A worker gets this long to leave its group cleanly on SIGINT before it is killed.
STOP_TIMEOUT_S = 30.0
_seeds = itertools.count(1000)
_names = itertools.count(1)  # worker names (and log files) are unique per session


@dataclass
class WorkerProc:
    """One ``changefeed worker`` process started by ``Workers``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    started_at: float  # time.monotonic() when spawned
    _out: IO[bytes] | None = None
    app_id: str = GROUP

    @property
    def sink_session(self) -> str:
        """Its sink sessions' ``application_name`` in ``pg_stat_activity``."""
        return sink_application_name(self.app_id, self.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_exit(self, timeout_s: float) -> int:
        return self.proc.wait(timeout_s)


class Workers:
    """Worker subprocesses of one scenario; only these are ever signalled."""

    def __init__(self, fp: FaultPipeline, group: str = GROUP, env: dict[str, str] | None = None) -> None:
        self.fp, self.group = fp, group
        self.env = dict(env or {})
        self.procs: list[WorkerProc] = []
        self.killed: list[WorkerProc] = []
        self._count = 0

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, count: int = 1, env: dict[str, str] | None = None) -> list[WorkerProc]:
        return [self.start_one(env=env) for _ in range(count)]

    def start_one(self, name: str | None = None, env: dict[str, str] | None = None) -> WorkerProc:
        self._count += 1
        name = name or f"{self.group}-w{next(_names)}"
        logs = self.fp.logs
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        out = log.open("ab")
        full_env = {**self.fp.env, "CHANGEFEED_WORKER__APP_ID": self.group, **self.env, **(env or {})}
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            cwd=repo_root(),
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        w = WorkerProc(name, proc, log, time.monotonic(), out, full_env["CHANGEFEED_WORKER__APP_ID"])
        self.procs.append(w)
        return w

    def kill(self, w: WorkerProc, sig: signal.Signals = signal.SIGKILL) -> None:
        assert w in self.procs, "only workers started here may be signalled"
        self.killed.append(w)
        if w.alive():
            os.kill(w.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            try:
                w.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            if w._out is not None:
                w._out.close()

    def pause(self, w: WorkerProc) -> None:
        assert w in self.procs
        assert w.alive()
        os.kill(w.pid, signal.SIGSTOP)

    def resume(self, w: WorkerProc) -> None:
        assert w in self.procs
        if w.alive():
            os.kill(w.pid, signal.SIGCONT)

    def restart(self, w: WorkerProc, env: dict[str, str] | None = None) -> WorkerProc:
        """SIGKILL ``w`` if it still runs, then start a new process with the same name and log."""
        if w.alive():
            self.kill(w)
        return self.start_one(name=w.name, env=env)

    def in_transaction(self) -> set[str]:
        """Names of workers whose sink session is inside a transaction right now (mid-flush)."""
        return self._sessions("xact_start IS NOT NULL")

    def running_statement(self) -> set[str]:
        """Names of workers whose sink session is executing a statement (e.g. a COMMIT) right now."""
        return self._sessions("state = 'active'")

    def _sessions(self, condition: str) -> set[str]:
        by_session = {w.sink_session: w.name for w in self.procs if w.alive()}
        with self.fp.sink() as conn:
            rows = conn.execute(
                sql.SQL("SELECT application_name FROM pg_stat_activity WHERE application_name = ANY(%s) AND ")
                + sql.SQL(condition),  # a fixed literal from this class, never input
                [list(by_session)],
            ).fetchall()
        return {by_session[str(r[0])] for r in rows}

    def alive(self) -> list[WorkerProc]:
        return [w for w in self.procs if w.alive()]

    def check_alive(self) -> None:
        """Every worker not deliberately killed must still run."""
        for w in self.procs:
            if w not in self.killed:
                assert w.alive(), f"worker {w.name} exited with {w.proc.returncode}; see {w.log}"

    def stop(self) -> None:
        """SIGCONT (a paused worker cannot leave), SIGINT, then SIGKILL after the grace period."""
        for w in self.procs:
            if w.alive():
                os.kill(w.pid, signal.SIGCONT)
                w.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for w in self.procs:
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            if w._out is not None and not w._out.closed:
                w._out.close()


class LoadRun(threading.Thread):
    """``run_load`` in a background thread; ``result()`` joins and re-raises its error."""

    def __init__(self, settings: Settings, plan: LoadPlan) -> None:
        super().__init__(name="fault-load", daemon=True)
        self.settings, self.plan = settings, plan
        self.report: LoadReport | None = None
        self.error: BaseException | None = None
        self.writes = 0

    def run(self) -> None:
        def counted(_w: object) -> None:
            self.writes += 1

        try:
            self.report = run_load(self.settings, self.plan, counted)
        except BaseException as exc:  # surfaced by result()
            self.error = exc

    def result(self, timeout_s: float | None = None) -> LoadReport:
        self.join(timeout_s)
        assert not self.is_alive(), "the load generator did not finish in time"
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report


@dataclass
class FaultPipeline:
    settings: Settings
    ctx: StackContext
    group: str = GROUP
    env: dict[str, str] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.ctx.paths.logs / "workers"

    @property
    def topics(self) -> tuple[str, ...]:
        """What the workers consume: the project's derived topics (or the settings' override)."""
        return self.settings.pipeline.topics or tuple(load_project(self.settings).subscriptions)

    # --- commands and workers -------------------------------------------------------------

    def cli(
        self, *args: str, timeout_s: float = SETUP_TIMEOUT_S, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "streams", *args],
            cwd=repo_root(),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"`changefeed {' '.join(args)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
        return done

    def workers(self, group: str | None = None, env: dict[str, str] | None = None) -> Workers:
        return Workers(self, group or self.group, env)

    # --- load -----------------------------------------------------------------------------

    def plan(
        self, rate: float, duration_s: float, mix: str = "70:25:5", seed: int | None = None, **kw: Any
    ) -> LoadPlan:
        return LoadPlan(rate=rate, duration_s=duration_s, mix=Mix.parse(mix), seed=seed or next(_seeds), **kw)

    def run_load(
        self, rate: float, duration_s: float, mix: str = "70:25:5", seed: int | None = None, **kw: Any
    ) -> LoadReport:
        return run_load(self.settings, self.plan(rate, duration_s, mix, seed, **kw))

    def start_load(
        self, rate: float, duration_s: float, mix: str = "70:25:5", seed: int | None = None, **kw: Any
    ) -> LoadRun:
        run = LoadRun(self.settings, self.plan(rate, duration_s, mix, seed, **kw))
        run.start()
        return run

    # --- Kafka and offsets ------------------------------------------------------------------

    def _consumer(self, group: str | None = None) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
        )

    def end_offsets(self, topics: Sequence[str] | None = None) -> dict[tuple[str, int], int]:
        c = self._consumer()
        try:
            names = c.topics() if topics is None else set(topics) & c.topics()
            tps = [
                TopicPartition(t, p) for t in sorted(names) for p in sorted(c.partitions_for_topic(t) or ())
            ]
            ends = c.end_offsets(tps) if tps else {}
            return {(tp.topic, tp.partition): int(o or 0) for tp, o in ends.items()}
        finally:
            c.close()

    def kafka_committed(self, group: str | None = None) -> dict[tuple[str, int], int]:
        """Kafka's committed offsets of ``group`` for the pipeline's topics."""
        c = self._consumer(group or self.group)
        try:
            out = {}
            for t in self.topics:
                for p in sorted(c.partitions_for_topic(t) or ()):
                    o = c.committed(TopicPartition(t, p))
                    if o is not None:
                        out[(t, p)] = int(o)
            return out
        finally:
            c.close()

    def stored_offsets(self, group: str | None = None) -> dict[tuple[str, int], int]:
        """The sink's own record of the next offset per partition (what a worker resumes from)."""
        with self.sink() as conn:
            rows = conn.execute(
                sql.SQL("SELECT topic, partition, next_offset FROM {} WHERE consumer_group = %s").format(
                    sql.Identifier(OFFSETS_TABLE)
                ),
                [group or self.group],
            ).fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def lag(self, group: str | None = None) -> int:
        """Records on the pipeline's topics not yet applied by the sink for ``group``."""
        ends = self.end_offsets(self.topics)
        stored = self.stored_offsets(group)
        return sum(max(0, end - stored.get(tp, 0)) for tp, end in ends.items())

    def wait_lag_zero(
        self,
        timeout_s: float,
        group: str | None = None,
        workers: Workers | None = None,
        past: dict[tuple[str, int], int] | None = None,
    ) -> float:
        """Seconds until lag is 0 (AssertionError after ``timeout_s``, or when ``workers`` died).

        ``past`` (``end_offsets()`` taken before writing to a source): also wait until those
        partitions gained records, so events still in capture are not mistaken for caught up.
        """
        started = time.monotonic()

        def caught_up() -> bool:
            if workers is not None:
                workers.check_alive()
            if past is not None:
                ends = self.end_offsets(self.topics)
                if sum(ends.get(tp, 0) for tp in past) <= sum(past.values()):
                    return False
            return self.lag(group) == 0

        poll(caught_up, timeout_s, "sink lag 0")
        return round(time.monotonic() - started, 1)

    def wait_quiet(self, quiet_s: float = 5.0, timeout_s: float = 120.0) -> None:
        """Until the change topics gained nothing for ``quiet_s`` (no load, capture drained)."""
        last = {"ends": self.end_offsets(self.topics), "at": time.monotonic()}

        def quiet() -> bool:
            now = self.end_offsets(self.topics)
            if now != last["ends"]:
                last.update(ends=now, at=time.monotonic())
            return time.monotonic() - float(str(last["at"])) >= quiet_s

        poll(quiet, timeout_s, f"{quiet_s:.0f} s without new change events", 1.0)

    def dlq_counts(self) -> dict[str, int]:
        """Dead letters per DLQ topic (end offsets: everything ever dead-lettered)."""
        counts: dict[str, int] = {}
        for (t, _), end in self.end_offsets().items():
            if t.endswith(".dlq"):
                counts[t] = counts.get(t, 0) + end
        return counts

    def dlq_records(self, source_topic: str) -> list[dlq.DeadLetter]:
        """Every dead letter of ``source_topic``, with its headers (``.why``: error class,
        message, source topic, partition, offset)."""
        return list(dlq.read(self.settings.kafka.bootstrap_servers, source_topic))

    def wait_topics(self, timeout_s: float = 120.0) -> None:
        def present() -> bool:
            admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka.bootstrap_servers)
            try:
                return set(self.topics) <= set(admin.list_topics())
            finally:
                admin.close()

        poll(present, timeout_s, f"change topics {self.topics}", 1.0)

    # --- the sink ---------------------------------------------------------------------------

    def sink(self) -> psycopg.Connection[Any]:
        return psycopg.connect(conninfo_from(self.settings.sink_postgres), autocommit=True)

    def ensure_sink(self) -> None:
        """Sink tables, control tables and audit triggers, before any worker starts."""

        async def setup() -> None:
            # As the workers' own login (granted by `services migrate`): it must own the tables.
            s = shipping_sink(worker_login_conninfo(self.settings), self.group)
            try:
                await s.ensure_schema(audit=True)
            finally:
                await s.close()

        asyncio.run(setup())

    def audit_mark(self) -> int:
        """The newest audit id: pass it to ``audit_writes`` to count row writes since now."""
        with self.sink() as conn:
            row = conn.execute(
                sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(AUDIT_TABLE))
            ).fetchone()
        return int(row[0]) if row else 0

    def audit_writes(self, since: int = 0) -> int:
        with self.sink() as conn:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE id > %s").format(sql.Identifier(AUDIT_TABLE)), [since]
            ).fetchone()
        return int(row[0]) if row else 0

    def audit_moves(self, since: int = 0) -> list[tuple[str, bytes | None, bytes]]:
        """``(sink table, old position, new position)`` of every row write after ``since``."""
        with self.sink() as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT sink_table, old_position, new_position FROM {}"
                    " WHERE id > %s AND new_position IS NOT NULL"
                ).format(sql.Identifier(AUDIT_TABLE)),
                [since],
            ).fetchall()
        return [(str(t), None if o is None else bytes(o), bytes(n)) for t, o, n in rows]

    def regressions(self) -> int:
        """Row writes, ever, that moved a key (row or tombstone) to an older source position.

        Pairwise: a sequence is monotonic iff each position is >= the one before it (PostgreSQL
        has no max(bytea), lag() suffices).
        """
        with self.sink() as conn:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM (SELECT new_position, lag(new_position) OVER"
                    " (PARTITION BY sink_table, row_key ORDER BY id) AS prev FROM {}"
                    " WHERE new_position IS NOT NULL) s WHERE new_position < prev"
                ).format(sql.Identifier(AUDIT_TABLE))
            ).fetchone()
        return int(row[0]) if row else 0

    def table_hashes(self) -> dict[str, tuple[int, str]]:
        """Row count and md5 over every column of every row, per sink (and tombstone) table."""
        out: dict[str, tuple[int, str]] = {}
        with self.sink() as conn:
            for m in shipping_mappings():
                tables = [m.sink_table] + (
                    [m.tombstone_table] if m.delete_policy is DeletePolicy.HARD else []
                )
                for table in tables:
                    order = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(k)) for k in m.key)
                    row = conn.execute(
                        sql.SQL(
                            "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {}), ''))"
                            " FROM {} t"
                        ).format(order, sql.Identifier(m.sink_schema, table))
                    ).fetchone()
                    assert row is not None
                    out[table] = (int(row[0]), str(row[1]))
        return out

    def converge(self, timeout_s: float) -> list[TableResult]:
        """verify --wait: the last round of source-vs-sink comparisons (all ok = converged)."""
        with open_databases(self.settings) as dbs:
            # Rounds 0.5 s apart, not the CLI's 2 s: a scenario's oracle waits on the pipeline's
            # last second of changes, and the fault stack serves nobody else.
            return verify_wait(dbs, shipping_mappings(), VerifyOptions(), timeout_s, interval=0.5)

    def oracle(
        self,
        numbers: dict[str, Any],
        timeout_s: float = 120.0,
        dlq_before: dict[str, int] | None = None,
        injected_dead_letters: int = 0,
    ) -> list[TableResult]:
        """The closing oracle of the fault scenarios (tests/faults/README.md); records its
        numbers and asserts them."""
        results = self.converge(timeout_s)
        diffs = sum(len(r.divergences) if hasattr(r, "divergences") else 0 for r in results)
        numbers["verify"] = "PASS" if all(r.ok for r in results) else "FAIL"
        numbers["sink_rows"] = {r.table: r.sink_rows for r in results}
        numbers["diffs"] = diffs
        numbers["regressions"] = self.regressions()
        dlq_now = self.dlq_counts()
        before = dlq_before or {}
        numbers["dead_letters"] = sum(dlq_now.values()) - sum(before.get(t, 0) for t in dlq_now)
        assert all(r.ok for r in results), f"source != sink: {results}"
        assert numbers["regressions"] == 0, "a sink row moved to an older source position"
        assert numbers["dead_letters"] == injected_dead_letters, (
            f"unexpected dead letters: {dlq_now} vs {before}"
        )
        return results

    # --- stack services (the fault stack's pid files only) --------------------------------------

    def service_pid(self, name: str) -> int:
        running = process.read_running(self.ctx.paths.pid_file(name), self.ctx.marker)
        assert running is not None, f"fault-stack service {name} is not running"
        return running.pid

    def stop_service(self, name: str, sig: signal.Signals = signal.SIGKILL, timeout_s: float = 60.0) -> None:
        """Signal a fault-stack service by its pid file and wait until it is gone."""
        os.kill(self.service_pid(name), sig)
        poll(
            lambda: process.read_running(self.ctx.paths.pid_file(name), self.ctx.marker) is None,
            timeout_s,
            f"{name} to exit",
            0.1,
        )

    def restart_services(self) -> float:
        """``supervisor.up`` on the fault stack: restarts what is down; returns seconds taken."""
        started = time.monotonic()
        supervisor.up(self.settings, lambda line: print(f"[fault stack] {line}"))
        return round(time.monotonic() - started, 1)


_SETUP: dict[Path, FaultPipeline] = {}


@pytest.fixture(scope="session")
def fault_pipeline(fault_settings: Settings, fault_stack: StackContext) -> FaultPipeline:
    """Set the pipeline up once per fault stack.

    Test modules import this fixture (``from tests.faults.pipeline import fault_pipeline``); each
    importing module gets its own fixture definition, so the instance is cached here by state dir.
    """
    state = fault_settings.stack.state_dir
    if state in _SETUP:
        return _SETUP[state]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANGEFEED_")}
    env.update(env_for(fault_settings))
    # The suite on the other consumer client ([worker] consumer), e.g. =librdkafka.
    if consumer := os.environ.get("CHANGEFEED_FAULTS_WORKER_CONSUMER"):
        env["CHANGEFEED_WORKER__CONSUMER"] = consumer
    fp = FaultPipeline(fault_settings, fault_stack, GROUP, env)
    for step in (("services", "migrate"), ("schemas", "register"), ("connectors", "apply")):
        fp.cli(*step)
    fp.ensure_sink()
    fp.run_load(rate=20, duration_s=2, mix="100:0:0")  # every change topic gets its first record
    fp.wait_topics()
    _SETUP[state] = fp
    return fp
