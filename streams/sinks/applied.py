"""The applied watermark: per source partition, the source position every change before it has
been applied up to — written in the flush transaction, beside the offsets, so it never claims a
change the sink has not committed (``streams.consistency`` waits on it).

What one partition can claim. Debezium writes a source's changes in commit order, so a partition's
records are in commit order too, but a record does not say whether its transaction has more
records after it. So a record claims only the transactions *before* its own:

- PostgreSQL: ``source.sequence[0]`` is the end LSN of the commit record of the transaction
  streamed before this record's one: every transaction committing at or below it is complete.
- MariaDB: a record with GTID ``d-s-n`` completes sequence ``n - 1`` of domain ``d``, and the last
  transaction seen of every other domain (ours follows it in the binlog).

The transaction of a partition's newest record is thus only claimed by the next record, or by the
waiter's "caught up" rule (no lag, and the connector has produced past the token; see
``streams.consistency.watermark``). Snapshot and incremental-snapshot records claim nothing (a
snapshot's rows are not all applied until it ends), nor does the first transaction after a
snapshot (no commit seen yet). Positions only move forward (``GREATEST``), like the offsets.

One ``pg_notify`` per flush that moved a watermark wakes waiters (delivered at COMMIT, never for a
rolled-back flush); the payload is the sink schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from streams.cdc.position import last_commit_lsn, snapshot_marker

APPLIED_TABLE = "changefeed_applied"
NOTIFY_CHANNEL = "changefeed_applied"
_GTID = re.compile(r"(\d+)-(\d+)-(\d+)")

Partition = tuple[str, int]


def applied_ddl(schema: str) -> list[sql.Composed]:
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (consumer_group text NOT NULL, topic text NOT NULL,"
            " partition integer NOT NULL, domain bigint NOT NULL, position numeric(20, 0) NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (consumer_group, topic, partition, domain))"
        ).format(sql.Identifier(schema, APPLIED_TABLE))
    ]


def store_applied_sql(schema: str) -> sql.Composed:
    """Params: group, topics[], partitions[], domains[], positions[]; then notify with the schema."""
    return sql.SQL(
        "WITH w AS (INSERT INTO {t} AS a (consumer_group, topic, partition, domain, position)"
        " SELECT %s, * FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::numeric[])"
        " ON CONFLICT (consumer_group, topic, partition, domain) DO UPDATE"
        " SET position = GREATEST(a.position, EXCLUDED.position), updated_at = now()"
        " WHERE a.position < EXCLUDED.position RETURNING 1)"
        " SELECT pg_notify({channel}, %s) WHERE EXISTS (SELECT 1 FROM w)"
    ).format(t=sql.Identifier(schema, APPLIED_TABLE), channel=sql.Literal(NOTIFY_CHANNEL))


def store_applied_params(
    group: str, schema: str, positions: Mapping[Partition, Mapping[int, int]]
) -> list[Any]:
    rows = sorted((t, p, d, s) for (t, p), by in positions.items() for d, s in by.items())
    return [
        group,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        schema,
    ]


def _gtid(source: Mapping[str, Any]) -> tuple[int, int] | None:
    match = _GTID.fullmatch(str(source.get("gtid") or ""))
    return None if match is None else (int(match.group(1)), int(match.group(3)))


def _last_commit(source: Mapping[str, Any]) -> int | None:
    return last_commit_lsn(source)  # None: the first transaction after a snapshot, no commit seen yet


def raise_to(pending: dict[Partition, dict[int, int]], key: Partition, domain: int, position: int) -> None:
    by = pending.setdefault(key, {})
    by[domain] = max(by.get(domain, 0), position)


@dataclass
class AppliedTracker:
    """Turns records into watermarks (into ``Pending.applied``, committed or retried with the batch).

    ``last`` (a partition's newest MariaDB GTID) outlives a flush: a transaction split across two
    flushes is completed by the first record of the next transaction, whichever flush carries it."""

    last: dict[Partition, tuple[int, int]] = field(default_factory=dict)

    def observe(
        self, pending: dict[Partition, dict[int, int]], topic: str, partition: int, source: Mapping[str, Any]
    ) -> None:
        if not source:
            return
        raw = source.get("snapshot")  # ``snapshot_marker``, with its commonest answer read first
        if (raw is not None and raw is not False and raw != "false") and snapshot_marker(source) != "false":
            return
        connector = source.get("connector", "")
        if connector != "postgresql":  # Debezium's own spelling: no str()/lower() per event
            connector = str(connector).lower()
        key = (topic, partition)
        if connector == "postgresql":
            lsn = _last_commit(source)
            if lsn is not None:
                raise_to(pending, key, 0, lsn)
        elif connector in {"mysql", "mariadb"} and (gtid := _gtid(source)) is not None:
            domain, seq = gtid
            previous = self.last.get(key)
            if previous is not None and previous != gtid:
                raise_to(pending, key, *previous)  # a different transaction follows: that one is complete
            if seq > 0:
                raise_to(pending, key, domain, seq - 1)
            self.last[key] = gtid

    def discard(self, partitions: Iterable[Partition]) -> None:
        """A revoked partition: its new owner tracks it from the stored offset on."""
        for key in partitions:
            self.last.pop(key, None)
