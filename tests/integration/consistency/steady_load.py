"""A paced load on one scratch PostgreSQL table and one MariaDB table, run as its own process
(``python -m tests.integration.consistency.steady_load``) so it does not share the test's GIL.

Each source gets ``rate`` single-row transactions per second (updates of keys 1..keys, then a
commit), until ``duration`` seconds pass or SIGTERM; prints the counts as JSON on exit.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections.abc import Callable

import psycopg
import pymysql

from streams.settings import load_settings
from streams.sinks import conninfo_from


def paced(rate: float, duration: float, stop: threading.Event, write: Callable[[int], None]) -> int:
    start, n = time.monotonic(), 0
    while not stop.is_set() and time.monotonic() - start < duration:
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(delay)  # pacing the writes, not synchronization
            continue
        write(n)
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg-table", required=True)  # "schema"."table", already quoted
    ap.add_argument("--maria-table", required=True)
    ap.add_argument("--rate", type=float, default=150)
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--keys", type=int, default=100)
    args = ap.parse_args()
    settings = load_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    counts: dict[str, int] = {}

    def pg() -> None:
        with psycopg.connect(conninfo_from(settings.source_postgres)) as conn:
            sql = f"UPDATE {args.pg_table} SET balance = balance + 1 WHERE id = %s"

            def write(n: int) -> None:
                conn.execute(sql, [n % args.keys + 1])
                conn.commit()

            counts["pg"] = paced(args.rate, args.duration, stop, write)

    def maria() -> None:
        m = settings.source_mariadb
        conn = pymysql.connect(
            host=m.host, port=m.port, user=m.user, password=m.password.get_secret_value(), database=m.database
        )
        sql = f"UPDATE {args.maria_table} SET balance = balance + 1 WHERE id = %s"

        def write(n: int) -> None:
            with conn.cursor() as cur:
                cur.execute(sql, [n % args.keys + 1])
            conn.commit()

        counts["maria"] = paced(args.rate, args.duration, stop, write)
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=pg), threading.Thread(target=maria)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    print(json.dumps({**counts, "seconds": round(elapsed, 1)}), flush=True)


if __name__ == "__main__":
    main()
