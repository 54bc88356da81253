"""The processed-event ledger and the runner that applies handlers exactly once per event id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from streams.bus.handlers import Handlers, Registered
from streams.bus.records import DomainEventRecord
from streams.errors import TransientError

log = logging.getLogger(__name__)
LEDGER = "bus_processed_events"

_CREATE = """
CREATE TABLE IF NOT EXISTS {schema}.{ledger} (
    handler      text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    kafka_offset bigint      NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    -- Redeliveries this row stopped from running the handler again (the demo reports the sum).
    duplicates   integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (handler, event_id)
)
"""
_CLAIM = """
INSERT INTO {schema}.{ledger} (handler, event_id, event_type, topic, partition, kafka_offset)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (handler, event_id) DO NOTHING RETURNING 1
"""
_SEEN_AGAIN = "UPDATE {schema}.{ledger} SET duplicates = duplicates + 1 WHERE handler = %s AND event_id = %s"


def is_transient(exc: BaseException) -> bool:
    """Worth retrying the same event: the database (or something else) is briefly unavailable."""
    return isinstance(exc, TransientError | psycopg.OperationalError | psycopg.InterfaceError)


def ensure_database(conninfo: str) -> None:
    """Create the handlers' database if missing (the local stack's admin login may)."""
    params = conninfo_to_dict(conninfo)
    name = str(params.get("dbname", ""))
    admin = make_conninfo(conninfo, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            # Another worker may create it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("created the handlers' database %s", name)


@dataclass
class Outcome:
    applied: int = 0
    duplicates: int = 0


class HandlerRunner:
    """One connection to the handlers' database; one transaction per (event, handler)."""

    def __init__(self, conninfo: str, schema: str, handlers: Handlers) -> None:
        self.conninfo, self.schema, self.handlers = conninfo, schema, handlers
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.totals = Outcome()

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(schema=sql.Identifier(self.schema), ledger=sql.Identifier(LEDGER))

    async def connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                await self._conn.close()
            # Here rather than at build time: a database briefly down is then a transient
            # failure the agent retries, not a worker that fails to start.
            await asyncio.to_thread(ensure_database, self.conninfo)
            conn = await psycopg.AsyncConnection.connect(self.conninfo)
            async with conn.transaction():
                await conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
                await conn.execute(self._sql(_CREATE))
                # Session-wide (not SET LOCAL; it outlives this transaction): the handlers'
                # unqualified names resolve to the ledger's schema.
                await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
                for setup in self.handlers.setups:
                    await setup(conn)
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def apply(self, reg: Registered, event: DomainEventRecord, message: Any) -> bool:
        """Run ``reg`` for ``event`` unless its ledger row exists; True if it ran (and committed)."""
        conn = await self.connection()
        claim = (reg.name, event.id, event.type, message.topic, message.partition, message.offset)
        async with conn.transaction():
            cur = await conn.execute(self._sql(_CLAIM), claim)
            if await cur.fetchone() is None:
                await conn.execute(self._sql(_SEEN_AGAIN), (reg.name, event.id))
                self.totals.duplicates += 1
                return False
            await reg.fn(conn, event)
        self.totals.applied += 1
        return True
