"""Read back what the demo produced: change events from Kafka, row writes from the sink's audit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from streams.cdc import ChangeEvent, parse_change_event
from streams.codecs import AvroDecoder
from streams.demo.latency import (
    Applied,
    Key,
    LatencyStats,
    VisibilityIndex,
    commit_time,
    key_of,
    latency_stats,
    whole_second_clock,
)
from streams.demo.offsets import Offsets
from streams.errors import PermanentError
from streams.registry.client import RegistryClient
from streams.sinks.ddl import AUDIT_TABLE
from streams.sinks.mapping import TableMapping

# A read that returns nothing for this long means the range is exhausted (or unreadable).
_IDLE_MS = 3000


def read_changes(
    bootstrap: str, registry_url: str, topic: str, before: Offsets, after: Offsets
) -> Iterator[ChangeEvent]:
    """Decode every change event of ``topic`` between two offset snapshots."""
    ranges = {p: (before.get((t, p), 0), end) for (t, p), end in after.items() if t == topic}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    with RegistryClient(registry_url) as registry:
        decoder = AvroDecoder(registry)
        try:
            for partition, (start, end) in sorted(ranges.items()):
                if end <= start:
                    continue
                tp = TopicPartition(topic, partition)
                consumer.assign([tp])
                consumer.seek(tp, start)
                offset = start
                while offset < end:
                    batch = consumer.poll(timeout_ms=_IDLE_MS)
                    if not batch:
                        break
                    for record in batch.get(tp, []):
                        offset = record.offset + 1
                        if record.offset >= end or record.value is None:
                            continue
                        try:
                            key = decoder.decode(record.key) if record.key else None
                            value = decoder.decode(record.value)
                            yield parse_change_event(
                                value, key=key, topic=topic, partition=partition, offset=record.offset
                            )
                        except PermanentError:
                            continue  # not a change event (e.g. poison); the DLQ count covers it
        finally:
            consumer.close()


def audit_entries(
    sink: psycopg.Connection[Any], since: datetime, schema: str = "public"
) -> list[tuple[str, dict[str, Any], bytes, datetime]]:
    rows = sink.execute(
        sql.SQL(
            "SELECT sink_table, row_key, new_position, at FROM {} WHERE at >= %s AND new_position IS NOT NULL"
        ).format(sql.Identifier(schema, AUDIT_TABLE)),
        [since],
    ).fetchall()
    sink.rollback()
    return [(str(t), dict(k), bytes(p), a) for t, k, p, a in rows]


def applied_writes(
    mappings: Sequence[TableMapping], entries: list[tuple[str, dict[str, Any], bytes, datetime]]
) -> list[Applied]:
    keys = {f"{m.sink_schema}.{m.sink_table}": m.key for m in mappings}
    out = []
    for table, row_key, position, at in entries:
        names = keys.get(table)
        if names is None or any(row_key.get(k) is None for k in names):
            continue
        key: Key = tuple(str(row_key[k]) for k in names)
        out.append(Applied(table, key, position, at))
    return out


Match = tuple[str, ChangeEvent, datetime, datetime]  # sink table, event, committed, visible
IMPRECISE = "imprecise"  # a change whose only commit time has whole seconds


def _matches(
    mappings: Sequence[TableMapping], events: dict[str, list[ChangeEvent]], applied: list[Applied]
) -> Iterator[Match | str | None]:
    """Each change of the mapped tables with its commit and visibility time (None: unmatched)."""
    index = VisibilityIndex(applied)
    for m in mappings:
        label = f"{m.sink_schema}.{m.sink_table}"
        for event in events.get(m.source_table, []):
            key, committed = key_of(m, event), commit_time(event)
            if committed is None and whole_second_clock(event):
                yield IMPRECISE
                continue
            if key is None or committed is None or event.position is None:
                yield None
                continue
            seen = index.visible_at(label, key, event.position.to_bytes())
            yield None if seen is None else (label, event, committed, seen)


def end_to_end(
    mappings: Sequence[TableMapping], events: dict[str, list[ChangeEvent]], applied: list[Applied]
) -> tuple[LatencyStats, datetime | None]:
    """Latency percentiles over every change of the mapped tables, and the last sink commit seen."""
    samples: list[float] = []
    unmatched = imprecise = 0
    last: datetime | None = None
    for match in _matches(mappings, events, applied):
        if match is None:
            unmatched += 1
            continue
        if isinstance(match, str):
            imprecise += 1
            continue
        _, _, committed, seen = match
        samples.append(max(0.0, (seen - committed).total_seconds()))
        last = seen if last is None or seen > last else last
    return latency_stats(samples, unmatched, imprecise), last


def by_stage(
    mappings: Sequence[TableMapping], events: dict[str, list[ChangeEvent]], applied: list[Applied]
) -> dict[str, LatencyStats]:
    """Where the time goes: ``capture`` (source commit → Debezium's ``ts_ms``), ``apply``
    (→ visible in the sink, through Kafka and a worker), and end to end per sink table.

    One machine's clock for all three stamps, so the split is exact up to the stamps' precision.
    """
    capture: list[float] = []
    apply: list[float] = []
    tables: dict[str, list[float]] = {f"{m.sink_schema}.{m.sink_table}": [] for m in mappings}
    for match in _matches(mappings, events, applied):
        if match is None or isinstance(match, str):
            continue
        label, event, committed, seen = match
        tables[label].append(max(0.0, (seen - committed).total_seconds()))
        if event.ts is not None:
            capture.append(max(0.0, (event.ts - committed).total_seconds()))
            apply.append(max(0.0, (seen - event.ts).total_seconds()))
    return {
        "capture": latency_stats(capture, 0),
        "apply": latency_stats(apply, 0),
        **{label: latency_stats(samples, 0) for label, samples in tables.items()},
    }
