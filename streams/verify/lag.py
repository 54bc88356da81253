"""How far the sink is behind Kafka: per topic partition, the newest offset seen vs applied.

The sink stores the next offset to consume per (group, topic, partition) in
``changefeed_offsets``, in the same transaction as the rows, so ``end offset - stored offset`` is
exactly the number of changes not yet applied. The age of the oldest unapplied change is the
age of the record at the stored offset (its Kafka timestamp: when Connect produced it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from streams.cdc import SourcePosition
from streams.sinks.ddl import OFFSETS_TABLE
from streams.sinks.mapping import TableMapping

# Fetching one record to date the oldest unapplied change; a missing record must not hang lag.
_FETCH_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    end_offset: int  # next offset Kafka will assign: everything below it was seen
    applied_offset: int  # next offset the sink will consume: everything below it was applied
    oldest_unapplied_at: datetime | None = None

    @property
    def lag(self) -> int:
        return max(0, self.end_offset - self.applied_offset)

    def age_s(self, now: datetime) -> float:
        return (
            0.0
            if self.oldest_unapplied_at is None or not self.lag
            else (now - self.oldest_unapplied_at).total_seconds()
        )


def stored_offsets(sink: psycopg.Connection[Any], schema: str = "public") -> list[tuple[str, str, int, int]]:
    """``(group, topic, partition, next offset)`` from the sink; empty before any worker ran."""
    exists = sink.execute("SELECT to_regclass(%s)", [f"{schema}.{OFFSETS_TABLE}"]).fetchone()
    if exists is None or exists[0] is None:
        sink.rollback()
        return []
    rows = sink.execute(
        sql.SQL("SELECT consumer_group, topic, partition, next_offset FROM {} ORDER BY 1, 2, 3").format(
            sql.Identifier(schema, OFFSETS_TABLE)
        )
    ).fetchall()
    sink.rollback()
    return [(str(g), str(t), int(p), int(o)) for g, t, p, o in rows]


def topics_for(mappings: Iterable[TableMapping], topics: Iterable[str]) -> list[str]:
    """Change topics of the mapped source tables: ``<prefix>.<schema|db>.<table>``."""
    wanted = [m.source_table for m in mappings]
    return sorted(t for t in topics if any(t.endswith("." + w) for w in wanted) and not t.endswith(".dlq"))


def _timestamp_at(consumer: KafkaConsumer, tp: TopicPartition, offset: int) -> datetime | None:
    consumer.assign([tp])
    consumer.seek(tp, offset)
    batch = consumer.poll(timeout_ms=_FETCH_TIMEOUT_MS, max_records=1)
    for records in batch.values():
        for record in records:
            return datetime.fromtimestamp(record.timestamp / 1000, UTC)
    return None


def measure_lag(
    bootstrap: str, sink: psycopg.Connection[Any], extra_topics: Sequence[str] = (), schema: str = "public"
) -> list[PartitionLag]:
    """Lag of every stored (group, topic, partition), plus ``extra_topics`` nobody applied yet."""
    stored = stored_offsets(sink, schema)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        known = {(t, p) for _, t, p, _ in stored}
        groups = sorted({g for g, *_ in stored}) or ["(none)"]
        for topic in extra_topics:
            for p in sorted(consumer.partitions_for_topic(topic) or ()):
                if (topic, p) not in known:
                    stored.extend((g, topic, p, 0) for g in groups)
        tps = [TopicPartition(t, p) for _, t, p, _ in stored]
        ends = consumer.end_offsets(tps) if tps else {}
        out = []
        for group, topic, partition, applied in stored:
            tp = TopicPartition(topic, partition)
            end = int(ends.get(tp, 0) or 0)
            oldest = _timestamp_at(consumer, tp, applied) if end > applied else None
            out.append(PartitionLag(group, topic, partition, end, applied, oldest))
        return out
    finally:
        consumer.close()


def applied_positions(sink: psycopg.Connection[Any], mappings: Iterable[TableMapping]) -> dict[str, str]:
    """Newest source position each sink table holds (``-`` when empty or not created yet)."""
    out: dict[str, str] = {}
    for m in mappings:
        exists = sink.execute("SELECT to_regclass(%s)", [f"{m.sink_schema}.{m.sink_table}"]).fetchone()
        if exists is None or exists[0] is None:
            out[m.sink_table] = "-"
            continue
        row = sink.execute(
            # PostgreSQL has no max(bytea); bytea does order, so sort and take one.
            sql.SQL("SELECT _cf_position FROM {} ORDER BY _cf_position DESC LIMIT 1").format(
                sql.Identifier(m.sink_schema, m.sink_table)
            )
        ).fetchone()
        out[m.sink_table] = str(SourcePosition.from_bytes(bytes(row[0]))) if row and row[0] else "-"
    sink.rollback()
    return out
