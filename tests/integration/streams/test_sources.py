"""Both real sources through Debezium into the shipping tables, with order_view enrichment."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pymysql
import pytest

from streams.settings import Settings
from tests.integration.streams.helpers import Worker
from tests.polling import poll

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[tuple[object, ...]]


def customers_db(settings: Settings) -> Conn:
    db = settings.source_postgres
    return psycopg.connect(host=db.host, port=db.port, user=db.user, autocommit=True,
                           password=db.password.get_secret_value(), dbname=db.database)  # fmt: skip


def orders_db(settings: Settings) -> Any:
    db = settings.source_mariadb
    return pymysql.connect(host=db.host, port=db.port, user=db.user, autocommit=False,
                           password=db.password.get_secret_value(), database=db.database)  # fmt: skip


def place_order(settings: Settings, customer_id: int) -> int:
    """The orders service's way: the order row and its outbox event in one transaction."""
    conn = orders_db(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO orders (customer_id, total_cents) VALUES (%s, 4200)", (customer_id,))
            order_id = int(cur.lastrowid)
            payload = {"order_id": order_id, "customer_id": customer_id, "total_minor": 4200,
                       "currency": "EUR", "item_count": 1}  # fmt: skip
            cur.execute(
                "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES (%s, 'order', %s,"
                " 'OrderPlaced', %s)",
                (str(uuid.uuid4()), str(order_id), json.dumps(payload)),
            )
        conn.commit()
        return order_id
    finally:
        conn.close()


def one(sink: Conn, query: str, *args: object) -> Any:
    try:
        return sink.execute(query, args).fetchone()
    except psycopg.errors.UndefinedTable:
        return None  # the worker has not created its tables yet


def test_inserts_updates_deletes_converge_and_enrich_order_view(
    settings: Settings, sink: Conn, schema: str, workers: Callable[..., Worker]
) -> None:
    tag = uuid.uuid4().hex[:8]
    with customers_db(settings) as pg:
        cid = pg.execute(
            "INSERT INTO customers (email, first_name, last_name)"
            " VALUES (%s, 'Grace', 'Hopper') RETURNING id",
            (f"grace-{tag}@it.test",),
        ).fetchone()[0]  # type: ignore[index]
    order_id = place_order(settings, cid)
    workers(f"it-{tag}", schema)
    ov = f'"{schema}".order_view'
    cd = f'"{schema}".customer_directory'
    view = f"SELECT customer_name, customer_email, status FROM {ov} WHERE order_id = %s"
    poll(lambda: one(sink, view, order_id) == ("Grace Hopper", f"grace-{tag}@it.test", "placed"), 120,
         "the outbox-placed order in order_view with its customer's name")  # fmt: skip

    with customers_db(settings) as pg:  # the customer's email change reaches existing orders
        pg.execute("UPDATE customers SET email = %s WHERE id = %s", (f"new-{tag}@it.test", cid))
    poll(lambda: one(sink, view, order_id) == ("Grace Hopper", f"new-{tag}@it.test", "placed"), 60,
         "the new email in order_view")  # fmt: skip

    conn = orders_db(settings)  # an order update converges (guarded by the order's own position)
    with conn.cursor() as cur:
        cur.execute("UPDATE orders SET status = 'shipped' WHERE id = %s", (order_id,))
    conn.commit()
    poll(lambda: one(sink, view, order_id) == ("Grace Hopper", f"new-{tag}@it.test", "shipped"), 60,
         "the status update")  # fmt: skip

    with conn.cursor() as cur:  # deletes converge in both tables
        cur.execute("DELETE FROM orders WHERE id = %s", (order_id,))
    conn.commit()
    conn.close()
    with customers_db(settings) as pg:
        pg.execute("DELETE FROM customers WHERE id = %s", (cid,))
    poll(lambda: one(sink, f"SELECT count(*) FROM {ov} WHERE order_id = %s", order_id) == (0,), 60,
         "the order delete")  # fmt: skip
    poll(lambda: one(sink, f"SELECT count(*) FROM {cd} WHERE customer_id = %s", cid) == (0,), 60,
         "the customer delete")  # fmt: skip
