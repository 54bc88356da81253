"""Atomic sources (issue 16) on the real stack: no reader of the sink sees half a transaction.

Each test is a scratch project of its own (source tables, connector files, tables file, sink
schema, worker). A checker reads the sink in one REPEATABLE READ query, over and over, while a
load writes multi-row source transactions:

- PostgreSQL transfers between accounts (two updates per transaction): the sum of the balances
  is constant in every snapshot of the sink — in atomic mode; per-change mode is measured over
  the same load and its violations reported (they depend on where batches happen to cut);
- MariaDB orders with their lines (two tables, one transaction): no order's total differs from
  the sum of its lines;
- one 50,000-row PostgreSQL transaction: applied in parts (the log line and the split counter),
  all of it, with the worker's peak RSS reported.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from streams.pipeline.atomic import owner_lock_key
from streams.settings import Settings
from tests.integration.project.scratch_project import CF, REPO, ScratchProject
from tests.polling import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ACCOUNTS, START_BALANCE = 20, 1000
LOAD_S = 20.0
BIG_ROWS = 50_000


@pytest.fixture
def project(settings: Settings, tmp_path: Path) -> Iterator[ScratchProject]:
    p = ScratchProject(settings, tmp_path, "atx")
    try:
        yield p
    finally:
        p.close()


class Checker(threading.Thread):
    """Runs ``query`` (one row: rows seen, violating rows) in REPEATABLE READ until stopped."""

    def __init__(self, p: ScratchProject, query: str, complete: Callable[[tuple[Any, ...]], bool]) -> None:
        super().__init__(daemon=True)
        self.p, self.query, self.complete = p, query, complete
        self.stop = threading.Event()
        self.reads = self.violations = 0
        self.example: tuple[Any, ...] | None = None

    def run(self) -> None:
        with self.p.sink() as conn:
            conn.autocommit = False
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            while not self.stop.is_set():
                try:
                    row = conn.execute(self.query).fetchone()
                except psycopg.errors.UndefinedTable:
                    conn.rollback()
                    continue
                conn.rollback()
                if row is None or not self.complete(row):
                    continue
                self.reads += 1
                if row[-1]:
                    self.violations += 1
                    self.example = self.example or row


def transfers(p: ScratchProject, seconds: float) -> int:
    """Transfers between random accounts, one source transaction each; returns how many."""
    rng, n = random.Random(16), 0
    with p.pg() as pg:  # autocommit: each ``transaction()`` is one source transaction
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            a, b = rng.sample(range(1, ACCOUNTS + 1), 2)
            amount = rng.randint(1, 50)
            with pg.transaction():
                pg.execute(
                    f'UPDATE "{p.pg_schema}".accounts SET balance = balance - %s WHERE id = %s', [amount, a]
                )
                pg.execute(
                    f'UPDATE "{p.pg_schema}".accounts SET balance = balance + %s WHERE id = %s', [amount, b]
                )
            n += 1
    return n


def pg_balances(p: ScratchProject) -> list[tuple[Any, ...]]:
    with p.pg() as pg:
        return pg.execute(f'SELECT id, balance FROM "{p.pg_schema}".accounts ORDER BY id').fetchall()


def latency_quantiles(p: ScratchProject, table: str) -> str:
    """p50/p99 of the worker's source-commit → sink-commit histogram for ``table`` (bucket upper
    bounds: an estimate, for the report)."""
    text = httpx.get(f"http://127.0.0.1:{p.metrics_port}/metrics", timeout=5).text
    name = "changefeed_end_to_end_latency_seconds_bucket{"
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(name) and f'table="{p.sink_schema}.{table}"' in line:
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float(le), float(line.rpartition(" ")[2])))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0
    if not total:
        return "no samples"
    out = []
    for q in (0.5, 0.99):
        le = next(b for b, n in buckets if n >= q * total)
        out.append(f"p{int(q * 100)} <= {le:g} s")
    return ", ".join(out) + f" ({total:.0f} rows)"


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _pg_project(p: ScratchProject, mode: str, extra_tables: str = "") -> None:
    p.pg_tables(
        {"accounts": "id int PRIMARY KEY, balance bigint NOT NULL", "big": "id int PRIMARY KEY, v text"}
    )
    p.tables_file(
        f'[[tables]]\nsource = "{p.pg_schema}.accounts"\nsink = "accounts"\n'
        f'[[tables]]\nsource = "{p.pg_schema}.big"\nsink = "big"\n{extra_tables}'
        f'[[sources]]\nconnector = "{p.pg_connector}"\ntransactions = "{mode}"\n'
    )
    with p.pg() as pg:
        for i in range(1, ACCOUNTS + 1):
            pg.execute(f'INSERT INTO "{p.pg_schema}".accounts VALUES (%s, %s)', [i, START_BALANCE])


SUM_QUERY = 'SELECT count(*), sum(balance) <> {total} FROM "{schema}".accounts'


def _run_transfers(p: ScratchProject) -> tuple[Checker, int]:
    p.start()
    poll(lambda: len(p.sink_rows("accounts")) == ACCOUNTS, 180, "the snapshot in the sink")
    checker = Checker(
        p,
        SUM_QUERY.format(total=ACCOUNTS * START_BALANCE, schema=p.sink_schema),
        lambda row: row[0] == ACCOUNTS,
    )
    checker.start()
    try:
        started = time.monotonic()
        n = transfers(p, LOAD_S)
        rate = n / (time.monotonic() - started)
        want = pg_balances(p)
        poll(lambda: p.sink_rows("accounts", "id, balance") == want, 180, "every transfer in the sink")
    finally:
        checker.stop.set()
        checker.join(30)
    print(f"\n{n} transfers at {rate:.0f} tx/s; {checker.reads} sink reads, {checker.violations} violations")
    print(f"end-to-end latency: {latency_quantiles(p, 'accounts')}")
    return checker, n


@pytest.mark.timeout(900)
def test_atomic_postgresql_transfers_never_show_half_a_transfer(project: ScratchProject) -> None:
    p = project
    _pg_project(p, "atomic")
    checker, n = _run_transfers(p)
    assert checker.reads > 100, "the checker must have read the sink while transfers were applied"
    assert checker.violations == 0, f"{checker.violations} reads saw half a transfer, e.g. {checker.example}"
    log = p.log()
    assert "owns its transactions now" in log, log[-3000:]
    group = [line for line in log.splitlines() if "] consuming " in line]
    assert group, log[-3000:]
    assert not any(p.pg_prefix in line for line in group), f"the group must not read the source: {group}"
    assert p.metric("changefeed_transactions_released_total", source=p.pg_prefix) >= n

    # One 50,000-row transaction: applied in parts (over max_transaction_rows), all of it.
    assert p.worker is not None
    before = peak_rss_kib(p.worker.pid)
    with p.pg() as pg, pg.transaction():
        pg.execute(
            f"INSERT INTO \"{p.pg_schema}\".big SELECT g, repeat('x', 100) FROM generate_series(1, %s) g",
            [BIG_ROWS],
        )
    poll(lambda: p.sink_rows("big", "count(*)", "true") == [(BIG_ROWS,)], 300, "the 50,000 rows in the sink")
    poll(
        lambda: p.metric("changefeed_transactions_split_total", source=p.pg_prefix, reason="rows") >= 1,
        30,
        "the split counter",
    )
    assert "applied in parts (rows" in p.log()
    with p.sink() as sink:
        poll(
            lambda: (
                sink.execute(
                    f'SELECT count(*) FROM "{p.sink_schema}".changefeed_transaction_progress'
                ).fetchone()
                == (0,)
            ),
            60,
            "the split transaction's progress row removed at its END",
        )
    after = peak_rss_kib(p.worker.pid)
    print(
        f"worker peak RSS: {before / 1024:.0f} MiB before the {BIG_ROWS}-row transaction,"
        f" {after / 1024:.0f} MiB after"
    )


@pytest.mark.timeout(600)
def test_per_change_postgresql_transfers_measured(project: ScratchProject) -> None:
    """The same load in the default mode: the violations are reported (the reason to use the
    mode); asserted only to have been measured, as where a batch cuts is up to timing."""
    p = project
    _pg_project(p, "per-change")
    checker, _ = _run_transfers(p)
    assert checker.reads > 100
    print(f"per-change mode: {checker.violations} of {checker.reads} sink reads saw half a transfer")


ORDERS_CHECK = (  # a hash join: a correlated subquery per order gets slower with every order
    'SELECT count(*), count(*) FILTER (WHERE o.total <> coalesce(l.s, 0)) FROM "{s}".orders o'
    ' LEFT JOIN (SELECT order_id, sum(amount) AS s FROM "{s}".lines GROUP BY order_id) l'
    " ON l.order_id = o.id"
)


@pytest.mark.timeout(600)
def test_atomic_mariadb_orders_never_differ_from_their_lines(project: ScratchProject) -> None:
    checker = _orders_run(project, "atomic")
    assert checker.reads > 100
    assert checker.violations == 0, (
        f"{checker.violations} reads saw an order apart from its lines: {checker.example}"
    )


@pytest.mark.timeout(600)
def test_per_change_mariadb_orders_measured(project: ScratchProject) -> None:
    """The same load in the default mode, reported (see the PostgreSQL one)."""
    checker = _orders_run(project, "per-change")
    assert checker.reads > 100
    print(
        f"per-change mode: {checker.violations} of {checker.reads} sink reads saw an order"
        " apart from its lines"
    )


def _orders_run(p: ScratchProject, mode: str) -> Checker:
    p.mariadb_tables(
        {
            "orders": "id INT PRIMARY KEY, total BIGINT NOT NULL",
            "lines": "id INT PRIMARY KEY, order_id INT NOT NULL, amount BIGINT NOT NULL",
        }
    )
    orders, lines = p.maria_tables
    p.tables_file(
        f'[[tables]]\nsource = "{p.maria_db}.{orders}"\nsink = "orders"\n'
        f'[[tables]]\nsource = "{p.maria_db}.{lines}"\nsink = "lines"\n'
        f'[[sources]]\nconnector = "{p.maria_connector}"\ntransactions = "{mode}"\n'
    )
    p.start()
    checker = Checker(p, ORDERS_CHECK.format(s=p.sink_schema), lambda row: row[0] > 0)
    checker.start()
    rng, line_id, n = random.Random(7), 0, 0
    conn = p.maria()
    conn.autocommit(False)
    try:
        deadline = time.monotonic() + LOAD_S
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                n += 1
                amounts = [rng.randint(1, 100) for _ in range(rng.randint(1, 4))]
                cur.execute(f"INSERT INTO `{orders}` VALUES (%s, %s)", [n, sum(amounts)])
                for a in amounts:
                    line_id += 1
                    cur.execute(f"INSERT INTO `{lines}` VALUES (%s, %s, %s)", [line_id, n, a])
                if n > 1 and n % 3 == 0:  # an older order changes: a line and its total together
                    o = rng.randint(1, n - 1)
                    cur.execute(f"UPDATE `{lines}` SET amount = amount + 5 WHERE order_id = %s LIMIT 1", [o])
                    cur.execute(f"UPDATE `{orders}` SET total = total + 5 WHERE id = %s", [o])
                conn.commit()
        poll(lambda: p.sink_rows("orders", "count(*)", "true") == [(n,)], 180, "every order in the sink")
        poll(lambda: p.sink_rows("lines", "count(*)", "true") == [(line_id,)], 60, "every line in the sink")
    finally:
        checker.stop.set()
        checker.join(30)
        conn.close()
    print(f"\n{n} order transactions; {checker.reads} sink reads, {checker.violations} violations")
    return checker


# The session holding an advisory lock on a bigint key (classid: its high half, objid: its low).
OWNER_SQL = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)"
)


@pytest.mark.timeout(900)
def test_owner_sigkilled_three_times_standby_takes_over_and_no_reader_sees_half(
    project: ScratchProject, tmp_path: Path
) -> None:
    """Two workers on one atomic source: one owns it, the other stands by. The owner is SIGKILLed
    three times during the transfers (each time a fresh standby is started): the standby takes
    over from the sink's offsets, no read of the sink ever sees half a transfer, nothing is lost."""
    p = project
    p.pg_tables({"accounts": "id int PRIMARY KEY, balance bigint NOT NULL"})
    p.tables_file(
        f'[[tables]]\nsource = "{p.pg_schema}.accounts"\nsink = "accounts"\n'
        f'[[sources]]\nconnector = "{p.pg_connector}"\ntransactions = "atomic"\n'
    )
    with p.pg() as pg:
        for i in range(1, ACCOUNTS + 1):
            pg.execute(f'INSERT INTO "{p.pg_schema}".accounts VALUES (%s, %s)', [i, START_BALANCE])
    p.start()
    assert p.worker is not None
    workers: list[tuple[subprocess.Popen[bytes], Path]] = [(p.worker, p.log_path)]

    def spawn() -> None:
        log_path = tmp_path / f"worker-{len(workers)}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [CF, "worker"], cwd=REPO, env={**p.env, "CHANGEFEED_WORKER__METRICS_PORT": "0"},
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        workers.append((proc, log_path))

    app_id = p.env["CHANGEFEED_WORKER__APP_ID"]
    key = owner_lock_key(p.sink_schema, app_id, p.pg_prefix)

    def owner() -> subprocess.Popen[bytes] | None:
        """The worker whose sink session holds the source's lock (its name ends in its pid)."""
        with p.sink() as sink:
            row = sink.execute(OWNER_SQL, [key]).fetchone()
        pid = int(row[0].rpartition("-")[2]) if row else None
        return next((w for w, _ in workers if w.pid == pid and w.poll() is None), None)

    def applied() -> int:
        """The accounts topic's next offset stored in the sink (0 before the first flush)."""
        with p.sink() as sink:
            row = sink.execute(
                f'SELECT max(next_offset) FROM "{p.sink_schema}".changefeed_offsets WHERE topic LIKE %s',
                ["%.accounts"],
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    spawn()
    poll(lambda: len(p.sink_rows("accounts")) == ACCOUNTS, 180, "the snapshot in the sink")
    checker = Checker(
        p,
        SUM_QUERY.format(total=ACCOUNTS * START_BALANCE, schema=p.sink_schema),
        lambda row: row[0] == ACCOUNTS,
    )
    checker.start()
    done: list[int] = []
    load = threading.Thread(target=lambda: done.append(transfers(p, LOAD_S + 15)), daemon=True)
    load.start()
    kills = 0
    try:
        for _ in range(3):
            killed = poll(owner, 60, "one owner among the live workers")
            start = applied()
            poll(lambda s=start: applied() >= s + 500, 60, "the owner applying transfers")
            killed.send_signal(signal.SIGKILL)
            killed.wait(10)
            kills += 1
            spawn()  # the next standby
            poll(lambda k=killed: (o := owner()) is not None and o is not k, 60, "a standby taking over")
        load.join(120)
        want = pg_balances(p)
        poll(lambda: p.sink_rows("accounts", "id, balance") == want, 180, "every transfer in the sink")
        verified = p.run("verify", "--wait", "60", "--sink-schema", p.sink_schema)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        checker.stop.set()
        checker.join(30)
        for w, _ in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(30)
    print(
        f"\n{done} transfers, {kills} owner SIGKILLs;"
        f" {checker.reads} sink reads, {checker.violations} violations"
    )
    assert kills == 3
    assert checker.reads > 100
    assert checker.violations == 0, f"{checker.violations} reads saw half a transfer, e.g. {checker.example}"


@pytest.mark.timeout(900)
def test_a_worker_killed_inside_a_split_transaction_completes_it_from_the_sink(
    project: ScratchProject, tmp_path: Path
) -> None:
    """The worker is SIGKILLed while a 100,000-row transaction is applied in parts: its earlier
    parts are below the stored offsets and never re-read, so the next worker completes it from
    the progress stored with them — at its END, not at the (long) deadline."""
    p = project
    p.pg_tables({"big": "id int PRIMARY KEY, v text"})
    p.tables_file(
        f'[[tables]]\nsource = "{p.pg_schema}.big"\nsink = "big"\n'
        f'[[sources]]\nconnector = "{p.pg_connector}"\ntransactions = "atomic"\n'
        "max_transaction_rows = 2000\nmax_transaction_wait_s = 600\n"
    )
    p.start()
    assert p.worker is not None
    with p.pg() as pg:  # the topics exist and are assigned before the big transaction
        pg.execute(f"INSERT INTO \"{p.pg_schema}\".big VALUES (0, 'first')")
    poll(lambda: p.sink_rows("big", "count(*)", "true") == [(1,)], 180, "the first row in the sink")
    rows = 100_000

    def progress() -> int:
        with p.sink() as sink:
            query = (
                f'SELECT sum((applied ->> %s)::bigint) FROM "{p.sink_schema}".changefeed_transaction_progress'
            )
            row = sink.execute(query, [f"{p.pg_schema}.big"]).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    with p.pg() as pg, pg.transaction():
        pg.execute(
            f"INSERT INTO \"{p.pg_schema}\".big SELECT g, repeat('y', 100) FROM generate_series(1, %s) g",
            [rows],
        )
    poll(lambda: progress() > 0, 120, "a part of the big transaction applied", interval_s=0.05)
    p.worker.send_signal(signal.SIGKILL)
    p.worker.wait(10)
    stored = progress()
    in_sink = p.sink_rows("big", "count(*)", "true")[0][0] - 1
    assert 0 < stored < rows, f"killed after {stored} of {rows} rows: not inside the transaction"
    assert in_sink == stored, "the stored progress counts exactly the rows committed with it"

    log_path = tmp_path / "worker-after.log"
    with log_path.open("ab") as log:
        after = subprocess.Popen([CF, "worker"], cwd=REPO, env=p.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        poll(lambda: p.sink_rows("big", "count(*)", "true") == [(rows + 1,)], 300, "every row in the sink")
        poll(lambda: progress() == 0, 60, "the progress row removed at the transaction's END")
    finally:
        after.terminate()
        after.wait(30)
    text = log_path.read_text(errors="replace")
    assert "resuming split transactions" in text, text[-3000:]
    assert "incomplete after" not in text + p.log(), "completed by its END's counts, not the deadline"
    print(f"\nkilled after {stored} of {rows} rows; the next worker applied the rest")
