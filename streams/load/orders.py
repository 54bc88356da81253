"""Writes to the orders service (MariaDB): business rows and their outbox row in ONE transaction.

Order lines are deleted explicitly before their order: InnoDB's ``ON DELETE CASCADE`` is not
written to the binlog as row events, so Debezium would never see those lines go. ``updated_at``
is stamped with ``NOW(6)`` in the transaction for end-to-end latency; the session runs in UTC
so ``TIMESTAMP`` values are read and written as instants.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pymysql

from streams.consistency.drivers import pymysql_token
from streams.load import data
from streams.load.keys import KeyPool
from streams.load.mix import WriteOp
from streams.load.written import Written
from streams.settings import SourceMariaDBSettings

AGGREGATE = "order"  # outbox aggregatetype: routed to outbox.event.order


def placed_payload(
    order_id: int, customer_id: int, total_minor: int, currency: str, lines: int
) -> dict[str, Any]:
    """``OrderPlaced`` outbox payload, per ``schemas/orders/outbox/OrderPlacedPayload.avsc``."""
    return {"order_id": order_id, "customer_id": customer_id, "total_minor": total_minor,
            "currency": currency, "item_count": lines, "status": "placed"}  # fmt: skip


def connect(db: SourceMariaDBSettings) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
        database=db.database, charset="utf8mb4", autocommit=False, init_command="SET time_zone = '+00:00'",
    )  # fmt: skip


def _naive_utc(at: datetime) -> datetime:
    """pymysql binds naive datetimes; with the session in UTC they mean UTC instants."""
    return at.astimezone(UTC).replace(tzinfo=None)


class OrdersWriter:
    source = "orders"
    tokens = False  # read a consistency token after each commit (one more round trip)

    def __init__(
        self,
        conn: pymysql.Connection[Any],
        rng: random.Random,
        pool: KeyPool,
        customers: KeyPool,
        large_every: int,
    ) -> None:
        self.conn, self.rng, self.pool, self.customers = conn, rng, pool, customers
        self.large_every = large_every
        self._base = datetime(2026, 6, 1, tzinfo=UTC)

    def load_keys(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT id FROM orders ORDER BY id")
            for (key,) in cur.fetchall():
                self.pool.add(int(key))
        self.conn.commit()

    def write(self, op: WriteOp) -> Written:
        if op is not WriteOp.INSERT and not self.pool:
            op = WriteOp.INSERT
        rows: Counter[str] = Counter()
        try:
            with self.conn.cursor() as cur:
                if op is WriteOp.INSERT:
                    key = self._insert(cur, rows)
                elif op is WriteOp.UPDATE:
                    key = self.pool.pick(self.rng)
                    self._update(cur, key, rows)
                else:
                    key = self.pool.pick(self.rng)
                    self._delete(cur, key, rows)
                cur.execute("SELECT NOW(6)")
                stamp = cur.fetchone()[0].replace(tzinfo=UTC)
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        committed = datetime.now(UTC)
        if op is WriteOp.INSERT:
            self.pool.add(key)
        elif op is WriteOp.DELETE:
            self.pool.remove(key)
        token = str(pymysql_token(self.conn, self.source)) if self.tokens else None
        return Written(
            self.source, op, key, stamp, committed, rows, outbox=rows.pop("outbox", 0), token=token
        )

    def _outbox(
        self, cur: Any, key: int, event_type: str, payload: dict[str, Any], rows: Counter[str]
    ) -> None:
        # Event ids must be unique across runs (a rerun with the same seed repeats every business
        # value), so they are the one thing not drawn from the seeded generator.
        event_id = uuid.uuid4()
        cur.execute(
            "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, created_at)"
            " VALUES (%s, %s, %s, %s, %s, NOW(6))",
            (str(event_id), AGGREGATE, str(key), event_type, data.canonical_json(payload)),
        )
        rows["outbox"] += 1

    def _insert(self, cur: Any, rows: Counter[str]) -> int:
        rng = self.rng
        customer = self.customers.pick(rng) if self.customers else rng.randint(1, 1000)
        large = self.large_every and rng.randrange(self.large_every) == 0
        gift = data.large_text(rng) if large else data.maybe(rng, "Alles Gute zum Geburtstag! 🎂", 0.6)
        promised = data.maybe(rng, _naive_utc(self._base + timedelta(days=rng.randint(1, 30))))
        address = data.maybe(rng, data.canonical_json(data.address(rng)), 0.1)
        currency = rng.choice(["EUR", "CHF", "JPY", "PLN"])
        cur.execute(
            "INSERT INTO orders (customer_id, status, currency, shipping_address, gift_message, promised_at,"
            " created_at, updated_at) VALUES (%s, 'placed', %s, %s, %s, %s, NOW(6), NOW(6))",
            (customer, currency, address, gift, promised),
        )
        key = int(cur.lastrowid)
        total = 0
        lines = rng.randint(1, 4)
        values = []
        for line_no in range(1, lines + 1):
            cents, qty = rng.randint(99, 25_000), rng.randint(1, 5)
            total += cents * qty
            values.append(
                (key, line_no, rng.choice(data.SKUS), qty, cents, data.money(rng, cents, cents),
                 data.maybe(rng, f"{rng.choice(data.CITIES)} edition — ✓"))
            )  # fmt: skip
        # One multi-row INSERT (PyMySQL's executemany), one round trip for all the lines.
        cur.executemany(
            "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price_cents, unit_price,"
            " description) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            values,
        )
        cur.execute(
            "UPDATE orders SET total_cents = %s, total = %s WHERE id = %s",
            (total, data.money(rng, total, total), key),
        )
        rows.update({"orders": 1, "order_lines": lines})
        self._outbox(cur, key, "OrderPlaced", placed_payload(key, customer, total, currency, lines), rows)
        return key

    def _update(self, cur: Any, key: int, rows: Counter[str]) -> None:
        rng = self.rng
        status = rng.choice(data.STATUSES)
        promised = data.maybe(rng, _naive_utc(self._base + timedelta(days=rng.randint(1, 60))))
        if rng.random() < 0.3:
            cur.execute(
                "UPDATE order_lines SET quantity = quantity + 1 WHERE order_id = %s AND line_no = 1", (key,)
            )
            rows["order_lines"] += cur.rowcount
        # The order's total is the sum of its lines in every committed transaction (the invariant
        # `changefeed verify invariants` checks on the sink), so it is recomputed in the same
        # transaction as the line change. FOR UPDATE: another writer's line change cannot slip in.
        cur.execute(
            "SELECT COALESCE(SUM(quantity * unit_price_cents), 0) FROM order_lines WHERE order_id = %s"
            " FOR UPDATE",
            (key,),
        )
        total = int(cur.fetchone()[0])
        cur.execute(
            "UPDATE orders SET status = %s, promised_at = %s, total_cents = %s, total = %s,"
            " updated_at = NOW(6) WHERE id = %s",
            (status, promised, total, Decimal(total).scaleb(-2), key),
        )
        rows["orders"] += 1
        self._outbox(cur, key, "OrderStatusChanged", {"order_id": key, "status": status}, rows)

    def _delete(self, cur: Any, key: int, rows: Counter[str]) -> None:
        rows["order_lines"] += cur.execute("DELETE FROM order_lines WHERE order_id = %s", (key,))
        rows["orders"] += cur.execute("DELETE FROM orders WHERE id = %s", (key,))
        self._outbox(cur, key, "OrderCancelled", {"order_id": key, "status": "cancelled"}, rows)
