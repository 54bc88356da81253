"""The demo's read-your-writes check: during the load, callers write, take a token, and read the
row back through the gRPC service (``ReadAfter``); a read older than the caller's own write is
stale. The service runs in-process on a free loopback port, like ``changefeed serve``.

A write stamps ``updated_at`` in its transaction; the row read must carry that stamp or a newer
one (the load may update the same row meanwhile). A row the load deleted meanwhile is
``superseded``, not stale.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from streams.consistency.drivers import psycopg_token, pymysql_token
from streams.load.customers import connect as connect_customers
from streams.load.orders import connect as connect_orders
from streams.settings import Settings

PG_UPDATE = "UPDATE public.customers SET updated_at = clock_timestamp() WHERE id = %s RETURNING updated_at"
MARIA_UPDATE = "UPDATE orders SET updated_at = NOW(6) WHERE id = %s"
MARIA_STAMP = "SELECT updated_at FROM orders WHERE id = %s"


@dataclass
class RywStats:
    pairs: int = 0
    stale: int = 0
    timeouts: int = 0
    superseded: int = 0
    waits_s: list[float] = field(default_factory=list)
    error: str = ""  # the check could not run (the summary says why; the demo's verdict is verify's)

    @property
    def p99_ms(self) -> float:
        if not self.waits_s:
            return float("nan")
        ordered = sorted(self.waits_s)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _stamp(value: Any) -> datetime:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class _Caller:
    def __init__(self, settings: Settings, pg: bool, keys: list[int], rng: random.Random) -> None:
        self.pg, self.keys, self.rng = pg, keys, rng
        self.conn: Any = (
            connect_customers(settings.source_postgres) if pg else connect_orders(settings.source_mariadb)
        )

    def write(self) -> tuple[int, datetime, str, float]:
        key = self.rng.choice(self.keys)
        if self.pg:
            row = self.conn.execute(PG_UPDATE, [key]).fetchone()
            self.conn.commit()
            committed = time.monotonic()
            return (
                key,
                _stamp(row[0]) if row else datetime.now(UTC),
                str(psycopg_token(self.conn, "customers")),
                committed,
            )
        with self.conn.cursor() as cur:
            cur.execute(MARIA_UPDATE, [key])
            cur.execute(MARIA_STAMP, [key])
            found = cur.fetchone()
        self.conn.commit()
        committed = time.monotonic()
        stamp = _stamp(found[0]) if found else datetime.now(UTC)
        return key, stamp, str(pymysql_token(self.conn, "orders")), committed


async def _run(settings: Settings, stop: threading.Event, stats: RywStats, callers: int, limit: int) -> None:
    from streams.serve.client import ConsistencyClient, status_name
    from streams.serve.runtime import build_hub, declared_tables, sink_conninfo
    from streams.serve.server import start_server

    with psycopg.connect(sink_conninfo(settings), autocommit=True) as sink:
        customers = [int(r[0]) for r in sink.execute("SELECT customer_id FROM customer_directory LIMIT 2000")]
        orders = [int(r[0]) for r in sink.execute("SELECT order_id FROM order_view LIMIT 2000")]
    hub = build_hub(settings)
    server, port = await start_server(hub, declared_tables(settings), sink_conninfo(settings), "127.0.0.1:0")
    client = ConsistencyClient(f"127.0.0.1:{port}")
    loop = asyncio.get_running_loop()
    rng = random.Random(4_242)  # noqa: S311 - which demo rows to touch, not secrets

    async def one(c: _Caller, table: str) -> None:
        while not stop.is_set() and stats.pairs < limit:
            key, stamp, token, committed = await loop.run_in_executor(None, c.write)
            reply = await client.read_after(token, table, [key], timeout=10)
            stats.pairs += 1
            if status_name(reply) != "APPLIED":
                stats.timeouts += 1
                continue
            stats.waits_s.append(time.monotonic() - committed)
            rows = [json.loads(r) for r in reply.rows_json]
            if not rows:
                stats.superseded += 1
            elif _stamp(rows[0]["updated_at"]) < stamp:
                stats.stale += 1

    made = []
    for i in range(callers):
        pg = i % 2 == 0
        keys = customers if pg else orders
        if keys:
            own = random.Random(rng.random())  # noqa: S311 - as above
            made.append((_Caller(settings, pg, keys, own), "customer_directory" if pg else "order_view"))
    try:
        await asyncio.gather(*(one(c, t) for c, t in made))
    finally:
        await client.close()
        await server.stop(1.0)
        await hub.stop()
        for c, _ in made:
            c.conn.close()


class ReadYourWrites:
    """Runs the pairs in a thread beside the load; ``stop()`` ends them and returns the tally."""

    def __init__(self, settings: Settings, callers: int = 4, limit: int = 2000) -> None:
        self.stats = RywStats()
        self._stop = threading.Event()

        def run() -> None:
            try:
                asyncio.run(_run(settings, self._stop, self.stats, callers, limit))
            except Exception as exc:  # shown in the summary, never lost in the thread
                self.stats.error = f"{type(exc).__name__}: {exc}"

        self._thread = threading.Thread(target=run, name="demo-read-your-writes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> RywStats:
        self._stop.set()
        self._thread.join(60)
        return self.stats
