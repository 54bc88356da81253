"""A source workload for capture-layer faults: multi-row INSERTs into a throw-away table.

Each statement inserts `rows_per_insert` rows in one transaction — the shape behind Debezium's
known resume bugs around events sharing one LSN — until stopped. The oracle compares the ids
in the source table with the ids seen on the change topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
from kafka import KafkaConsumer

from streams.settings import Settings
from streams.stack.smoke import Source, connect_source_mariadb, connect_source_postgres, json_consumer


class MultiRowWriter(threading.Thread):
    """Inserts batches until `stop` is set; counts committed rows."""

    def __init__(self, settings: Settings, source: Source, table: str, rows_per_insert: int = 50) -> None:
        super().__init__(daemon=True)
        self.settings, self.source, self.table, self.rows = settings, source, table, rows_per_insert
        self.stop = threading.Event()
        self.committed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # reported by the test, never swallowed
            self.error = exc

    def _loop(self) -> None:
        insert = self._pg_insert() if self.source == "postgres" else self._maria_insert()
        batch = 0
        while not self.stop.is_set():
            insert(batch)
            self.committed += self.rows
            batch += 1
            time.sleep(0.05)  # pacing: ~1,000 rows/s at 50 rows per insert

    def _pg_insert(self) -> Callable[[int], None]:
        conn = connect_source_postgres(self.settings)
        query = psycopg.sql.SQL("INSERT INTO {} (note) SELECT %s || '-' || g FROM generate_series(1, %s) g")
        stmt = query.format(psycopg.sql.Identifier(self.table))
        return lambda batch: conn.execute(stmt, (f"b{batch}", self.rows)) and None

    def _maria_insert(self) -> Callable[[int], None]:
        conn = connect_source_mariadb(self.settings)
        values = ",".join(["(%s)"] * self.rows)
        stmt = f"INSERT INTO `{self.table}` (note) VALUES {values}"

        def insert(batch: int) -> None:
            with conn.cursor() as cur:
                cur.execute(stmt, [f"b{batch}-{i}" for i in range(self.rows)])

        return insert


def source_ids(settings: Settings, source: Source, table: str) -> set[int]:
    if source == "postgres":
        with connect_source_postgres(settings) as conn:
            stmt = psycopg.sql.SQL("SELECT id FROM {}").format(psycopg.sql.Identifier(table))
            return {int(row[0]) for row in conn.execute(stmt)}
    conn = connect_source_mariadb(settings)
    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT id FROM `{table}`")
        return {int(row[0]) for row in cur.fetchall()}


def topic_ids(
    consumer: KafkaConsumer, want: set[int], deadline_s: float, seen: set[int] | None = None
) -> tuple[set[int], int]:
    """Ids of create/read events seen on the topic (and how many were duplicates).

    `seen` carries what earlier calls on the same consumer already read.
    """
    seen = set() if seen is None else seen
    duplicates = 0
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and not want <= seen:
        for record in consumer:
            value = record.value
            if isinstance(value, dict) and value.get("op") in ("c", "r") and value.get("after"):
                rid = int(value["after"]["id"])
                duplicates += rid in seen
                seen.add(rid)
    return seen, duplicates


__all__ = ["MultiRowWriter", "json_consumer", "source_ids", "topic_ids"]
