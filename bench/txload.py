"""Orders load for bench/txmodes.py: the load generator in parallel processes, and a fast backlog.

``changefeed load`` commits one transaction per operation with ~8 round trips each and tops out
near 100-400 tx/s in one process (less on a busy box), so a fixed 200 tx/s runs as several
generator processes at a share of the rate each (different seeds; the mix stays 70/25/5).

The backlog needs tens of thousands of source transactions in seconds: ``write_backlog`` sends
``BATCH`` of them per round trip (multi-statement), each ``START TRANSACTION; order; its lines;
its outbox row; COMMIT`` — the same shape as the generator's inserts (the order's total is the
sum of its lines in every committed transaction), one binlog transaction each.
"""

from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime
from multiprocessing import get_context
from typing import Any

import pymysql
from pymysql.constants import CLIENT

from streams.load import LoadPlan, run_load
from streams.load.data import SKUS
from streams.settings import Settings

BATCH = 50  # source transactions per round trip
SESSIONS = 6
CURRENCIES = ("EUR", "CHF", "JPY", "PLN")


def _part(settings: Settings, rate: float, duration_s: float, seed: int) -> tuple[int, datetime, datetime]:
    plan = LoadPlan(rate=rate, duration_s=duration_s, sources=("orders",), seed=seed)
    r = run_load(settings, plan)
    return r.tally.total, r.started_at, r.finished_at


def parallel_load(
    settings: Settings, rate: float, duration_s: float, seed: int, procs: int
) -> dict[str, Any]:
    """``procs`` generator processes at ``rate / procs`` each; what they achieved together."""
    with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(_part, settings, rate / procs, duration_s, seed * 100 + i) for i in range(procs)
        ]
        parts = [f.result() for f in futures]
    total = sum(p[0] for p in parts)
    started, finished = min(p[1] for p in parts), max(p[2] for p in parts)
    secs = max(1e-3, (finished - started).total_seconds())
    return {
        "transactions": total,
        "achieved_tx_s": round(total / secs, 1),
        "target_tx_s": rate,
        "seconds": round(secs, 1),
        "processes": procs,
        "started_at": started,
    }


def _transaction(conn: pymysql.Connection[Any], rng: random.Random) -> list[str]:
    """One source transaction's statements: integers formatted, strings escaped by the driver
    (a multi-statement batch binds no parameters)."""
    e = conn.escape
    lines = [(rng.randint(99, 25_000), rng.randint(1, 5), rng.choice(SKUS)) for _ in range(rng.randint(1, 4))]
    total = sum(cents * qty for cents, qty, _ in lines)
    customer, currency = rng.randint(1, 1000), rng.choice(CURRENCIES)
    values = ", ".join(
        f"(@o, {n}, {e(sku)}, {qty}, {cents}, {cents / 100:.2f})"
        for n, (cents, qty, sku) in enumerate(lines, 1)
    )
    return [
        "START TRANSACTION",
        "INSERT INTO orders (customer_id, status, currency, total_cents, total, created_at, updated_at)"  # noqa: S608
        f" VALUES ({customer}, 'placed', {e(currency)}, {total}, {total / 100:.2f}, NOW(6), NOW(6))",
        "SET @o = LAST_INSERT_ID()",
        "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price_cents, unit_price)"  # noqa: S608
        f" VALUES {values}",
        "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, created_at)"  # noqa: S608
        f" VALUES ({e(str(uuid.uuid4()))}, 'order', @o, 'OrderPlaced', "
        f" JSON_OBJECT('order_id', LAST_INSERT_ID(),"
        f" 'customer_id', {customer}, 'total_minor', {total}, 'currency', {e(currency)},"
        f" 'item_count', {len(lines)}, 'status', 'placed'), NOW(6))",
        "COMMIT",
    ]


def write_backlog(settings: Settings, n_tx: int, seed: int) -> dict[str, Any]:
    """``n_tx`` order transactions (order + 1-4 lines + outbox), ``BATCH`` per round trip from
    ``SESSIONS`` sessions at once (MariaDB's group commit shares their fsyncs: ~4x one session)."""
    shares = [n_tx // SESSIONS + (1 if i < n_tx % SESSIONS else 0) for i in range(SESSIONS)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(SESSIONS) as pool:
        list(pool.map(lambda i: _write(settings, shares[i], seed * 100 + i), range(SESSIONS)))
    secs = time.monotonic() - t0
    return {"transactions": n_tx, "write_s": round(secs, 1), "write_tx_s": round(n_tx / max(secs, 1e-3), 1),
            "sessions": SESSIONS}  # fmt: skip


def _write(settings: Settings, n_tx: int, seed: int) -> None:
    db = settings.source_mariadb
    conn = pymysql.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
        database=db.database, charset="utf8mb4", autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS,
        init_command="SET time_zone = '+00:00'",
    )  # fmt: skip
    rng = random.Random(seed)  # noqa: S311 - bench data, not secrets
    try:
        with conn.cursor() as cur:
            for lo in range(0, n_tx, BATCH):
                stmts = [s for _ in range(min(BATCH, n_tx - lo)) for s in _transaction(conn, rng)]
                cur.execute(";\n".join(stmts))
                while cur.nextset():  # every statement's result, or the next batch is refused
                    pass
    finally:
        conn.close()
