"""The demo's read-your-writes check: during the load, callers write, take a token, and read the
row back through the gRPC service (``ReadAfter``); a read that misses the caller's own write is
stale. The service runs in-process on a free loopback port, like ``changefeed serve``.

Each write INSERTs a new row (a customer, an order), so no other writer's version can be mistaken
for it: the read must find the row. A missing row is stale, unless the source no longer has it
either (the load deleted it meanwhile: ``superseded``). Updates of existing rows cannot be judged
this way: MariaDB's ``NOW(6)`` is the statement's start, so a later commit can carry an earlier
``updated_at`` (the first version of this check counted such a row as stale).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from streams.consistency.drivers import psycopg_token, pymysql_token
from streams.load.customers import connect as connect_customers
from streams.load.orders import connect as connect_orders
from streams.settings import Settings

PG_INSERT = (
    "INSERT INTO public.customers (email, first_name, last_name) VALUES (%s, 'Read', 'Your-Writes')"
    " RETURNING id"
)
MARIA_INSERT = "INSERT INTO orders (customer_id) VALUES (%s)"
PG_EXISTS = "SELECT 1 FROM public.customers WHERE id = %s"
MARIA_EXISTS = "SELECT 1 FROM orders WHERE id = %s"


@dataclass
class RywStats:
    pairs: int = 0
    stale: int = 0
    timeouts: int = 0
    superseded: int = 0
    waits_s: list[float] = field(default_factory=list)
    stale_keys: list[str] = field(default_factory=list)  # what to look at when stale > 0
    error: str = ""  # the check could not run (the summary says why; the demo's verdict is verify's)

    @property
    def p99_ms(self) -> float:
        if not self.waits_s:
            return float("nan")
        ordered = sorted(self.waits_s)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class _Caller:
    def __init__(self, settings: Settings, pg: bool, customers: list[int], rng: random.Random) -> None:
        self.pg, self.customers, self.rng = pg, customers, rng
        self.conn: Any = (
            connect_customers(settings.source_postgres) if pg else connect_orders(settings.source_mariadb)
        )

    def write(self) -> tuple[int, str, float]:
        """A new row, committed; its key, the token and the commit's monotonic time."""
        if self.pg:
            row = self.conn.execute(PG_INSERT, [f"ryw-{uuid.uuid4().hex}@example.com"]).fetchone()
            self.conn.commit()
            committed = time.monotonic()
            return int(row[0]), str(psycopg_token(self.conn, "customers")), committed
        with self.conn.cursor() as cur:
            cur.execute(MARIA_INSERT, [self.rng.choice(self.customers)])
            key = int(cur.lastrowid)
        self.conn.commit()
        committed = time.monotonic()
        return key, str(pymysql_token(self.conn, "orders")), committed

    def exists(self, key: int) -> bool:
        """Whether the source still has the row (autocommit off: end the read's transaction)."""
        if self.pg:
            found = self.conn.execute(PG_EXISTS, [key]).fetchone() is not None
            self.conn.rollback()
            return found
        with self.conn.cursor() as cur:
            cur.execute(MARIA_EXISTS, [key])
            found = cur.fetchone() is not None
        self.conn.commit()
        return found


async def _run(settings: Settings, stop: threading.Event, stats: RywStats, callers: int, limit: int) -> None:
    from streams.serve.client import ConsistencyClient, status_name
    from streams.serve.runtime import build_hub, declared_tables, sink_conninfo
    from streams.serve.server import start_server

    with psycopg.connect(sink_conninfo(settings), autocommit=True) as sink:
        customers = [int(r[0]) for r in sink.execute("SELECT customer_id FROM customer_directory LIMIT 2000")]
    hub = build_hub(settings)
    server, port = await start_server(hub, declared_tables(settings), sink_conninfo(settings), "127.0.0.1:0")
    client = ConsistencyClient(f"127.0.0.1:{port}")
    loop = asyncio.get_running_loop()
    rng = random.Random(4_242)  # noqa: S311 - which demo rows to touch, not secrets

    async def one(c: _Caller, table: str) -> None:
        while not stop.is_set() and stats.pairs < limit:
            key, token, committed = await loop.run_in_executor(None, c.write)
            reply = await client.read_after(token, table, [key], timeout=10)
            stats.pairs += 1
            if status_name(reply) != "APPLIED":
                stats.timeouts += 1
                continue
            stats.waits_s.append(time.monotonic() - committed)
            if reply.rows_json:
                continue
            if await loop.run_in_executor(None, c.exists, key):
                stats.stale += 1
                stats.stale_keys.append(f"{table}:{key} {token} (applied {reply.applied_position})")
            else:
                stats.superseded += 1

    made = []
    for i in range(callers):
        pg = i % 2 == 0
        if customers:  # orders reference one of them
            own = random.Random(rng.random())  # noqa: S311 - as above
            made.append((_Caller(settings, pg, customers, own), "customer_directory" if pg else "order_view"))
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
