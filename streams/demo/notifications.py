"""The demo's consumer service: a notification per changed email and per placed order.

Registered with the event bus (``[bus] handler_modules``; the demo sets it), so each runs
exactly once per event: its row in ``notifications`` and the ledger row commit together.
"""

from __future__ import annotations

from typing import Any

import psycopg

from streams.bus.handlers import Handlers
from streams.bus.records import CUSTOMERS, ORDERS, CustomerEmailChanged, OrderPlaced

TABLE = "notifications"
_INSERT = f"INSERT INTO {TABLE} (event_id, kind, recipient, message) VALUES (%s, %s, %s, %s)"  # noqa: S608  # a constant


def register(handlers: Handlers) -> None:
    @handlers.setup
    async def tables(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " id bigserial PRIMARY KEY, event_id text NOT NULL, kind text NOT NULL,"
            " recipient text NOT NULL, message text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )

    @handlers.on(CUSTOMERS + "CustomerEmailChanged", name="demo-notify-email-changed")
    async def email_changed(tx: psycopg.AsyncConnection[Any], event: CustomerEmailChanged) -> None:
        message = f"Your email address is now {event.data.new_email}"
        await tx.execute(_INSERT, (event.id, "email_changed", event.data.new_email, message))

    @handlers.on(ORDERS + "OrderPlaced", name="demo-notify-order-placed")
    async def order_placed(tx: psycopg.AsyncConnection[Any], event: OrderPlaced) -> None:
        d = event.data
        message = f"Order {d.order_id} placed: {d.item_count} item(s), {d.total_minor / 100:.2f} {d.currency}"
        await tx.execute(_INSERT, (event.id, "order_placed", f"customer:{d.customer_id}", message))
