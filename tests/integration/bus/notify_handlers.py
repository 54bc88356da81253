"""The test's bus handlers (``CHANGEFEED_BUS__HANDLER_MODULES``): one effect row per event."""

from __future__ import annotations

from typing import Any

import psycopg

from streams.bus.handlers import Handlers
from streams.bus.records import CustomerEmailChanged
from tests.integration.bus.helpers import EMAIL_CHANGED

POISON_EMAIL = "poison@example.com"


def register(handlers: Handlers) -> None:
    @handlers.setup
    async def tables(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS it_notifications"
            " (event_id text NOT NULL, customer_id bigint NOT NULL, email text NOT NULL)"
        )

    @handlers.on(EMAIL_CHANGED, name="it-notify-email")
    async def notify(tx: psycopg.AsyncConnection[Any], event: CustomerEmailChanged) -> None:
        if event.data.new_email == POISON_EMAIL:
            msg = f"refusing to notify {POISON_EMAIL}"
            raise ValueError(msg)
        # No unique constraint on purpose: only the ledger stops a second effect.
        await tx.execute(
            "INSERT INTO it_notifications (event_id, customer_id, email) VALUES (%s, %s, %s)",
            (event.id, event.data.customer_id, event.data.new_email),
        )
