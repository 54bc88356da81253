"""Orders load for bench/txmodes.py: a paced fixed rate and a fast backlog.

``changefeed load`` commits one transaction per operation with ~8 round trips each and reached
only ~100 tx/s on this busy box, even as three processes; ``paced`` sends the transactions due
every 50 ms in one round trip instead (each its own commit), new orders and updates of existing
ones, so a fixed 200 tx/s holds.

The backlog needs tens of thousands of source transactions in seconds: ``write_backlog`` sends
``BATCH`` of them per round trip (multi-statement), each ``START TRANSACTION; order; its lines;
its outbox row; COMMIT`` — the same shape as the generator's inserts (the order's total is the
sum of its lines in every committed transaction), one binlog transaction each.
"""

from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pymysql
from pymysql.constants import CLIENT

from streams.load.data import SKUS
from streams.settings import Settings

BATCH = 50  # source transactions per round trip
SESSIONS = 6
TICK_S = 0.05
CURRENCIES = ("EUR", "CHF", "JPY", "PLN")


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


def _update(conn: pymysql.Connection[Any], rng: random.Random, max_id: int) -> list[str]:
    """An existing order's first line changed and its total recomputed, with its outbox row (the
    generator's update: two tables, one transaction)."""
    key, status = rng.randint(1, max_id), rng.choice(("paid", "shipped", "delivered"))
    return [
        "START TRANSACTION",
        f"UPDATE order_lines SET quantity = quantity + 1 WHERE order_id = {key} AND line_no = 1",  # noqa: S608
        "UPDATE orders SET total_cents = (SELECT COALESCE(SUM(quantity * unit_price_cents), 0)"  # noqa: S608
        f" FROM order_lines WHERE order_id = {key}), status = {conn.escape(status)} WHERE id = {key}",
        "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, created_at)"  # noqa: S608
        f" VALUES ({conn.escape(str(uuid.uuid4()))}, 'order', '{key}', 'OrderStatusChanged',"
        f" JSON_OBJECT('order_id', {key}, 'status', {conn.escape(status)}), NOW(6))",
        "COMMIT",
    ]


def paced(
    settings: Settings, rate: float, duration_s: float, seed: int, update_share: float = 0.3
) -> dict[str, Any]:
    """``rate`` tx/s for ``duration_s``: every ``TICK_S`` the transactions due, in one round trip
    (each its own commit); ``update_share`` of them update an existing order, the rest insert one."""
    conn = _connect(settings)
    rng = random.Random(seed)  # noqa: S311 - bench data, not secrets
    started = datetime.now(UTC)
    t0 = time.monotonic()
    done = 0
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM orders")
            max_id = int(cur.fetchone()[0])
            while (now := time.monotonic() - t0) < duration_s:
                due = min(int(rate * duration_s), int(rate * now) + 1) - done
                if due > 0:
                    stmts = [
                        s
                        for _ in range(due)
                        for s in (
                            _update(conn, rng, max_id)
                            if max_id and rng.random() < update_share
                            else _transaction(conn, rng)
                        )
                    ]
                    cur.execute(";\n".join(stmts))
                    while cur.nextset():
                        pass
                    done += due
                time.sleep(TICK_S)  # pacing, not synchronization
    finally:
        conn.close()
    secs = max(1e-3, (datetime.now(UTC) - started).total_seconds())
    return {"transactions": done, "achieved_tx_s": round(done / secs, 1), "target_tx_s": rate,
            "seconds": round(secs, 1), "started_at": started, "update_share": update_share}  # fmt: skip


def _connect(settings: Settings) -> pymysql.Connection[Any]:
    db = settings.source_mariadb
    return pymysql.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
        database=db.database, charset="utf8mb4", autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS,
        init_command="SET time_zone = '+00:00'",
    )  # fmt: skip


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
    conn = _connect(settings)
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
