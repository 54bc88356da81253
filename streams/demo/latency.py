"""End-to-end latency: from a change's source commit to the sink commit that made it visible.

Source side: each change event read back from Kafka. Its commit time is the ``updated_at``
stamp the load generator wrote inside the transaction (microseconds), else Debezium's
``source.ts_ms`` (deletes). MariaDB/MySQL changes without the stamp (deletes, and every change
of ``order_lines``, which has no ``updated_at``) are left out: their binlog clock has whole
seconds only, which would add up to a second of made-up latency (``WHOLE_SECOND_CLOCKS``).
Sink side: ``changefeed_audit``, filled by the audit trigger the demo installs, records every
row write with its position and time. A change is visible at the first audit entry of its key
whose position is at least its own (a newer write of the same key that superseded it in one
batch counts: from then on the sink reflects it).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.cdc import ChangeEvent, Op
from streams.sinks.mapping import TableMapping

Key = tuple[str, ...]
STAMP_COLUMN = "updated_at"


@dataclass(frozen=True)
class Applied:
    sink_table: str  # "schema.table", as the audit trigger labels it
    key: Key
    position: bytes
    at: datetime


WHOLE_SECOND_CLOCKS = frozenset({"mysql", "mariadb"})  # source.connector values


def _stamp(event: ChangeEvent) -> datetime | None:
    """The load generator's in-transaction ``updated_at`` stamp, when the event carries one."""
    if event.op is Op.DELETE or event.after is None:
        return None
    stamp = event.after.get(STAMP_COLUMN)
    if isinstance(stamp, datetime):
        return stamp
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def whole_second_clock(event: ChangeEvent) -> bool:
    """True when the only commit time this event has is a whole-second binlog timestamp: a
    MariaDB/MySQL delete, or a change of a table without the stamp column (``order_lines``)."""
    connector = str(event.source.get("connector", "")).lower()
    return connector in WHOLE_SECOND_CLOCKS and _stamp(event) is None


def commit_time(event: ChangeEvent) -> datetime | None:
    """The load generator's in-transaction stamp when the event carries it, else ``source.ts``
    (None when that clock has whole seconds only)."""
    stamp = _stamp(event)
    if stamp is not None:
        return stamp
    return None if whole_second_clock(event) else event.source_ts


def key_of(mapping: TableMapping, event: ChangeEvent) -> Key | None:
    """The sink key of an event as text (how the audit trigger's jsonb renders it)."""
    row: dict[str, Any] = dict(event.key) if isinstance(event.key, dict) else {}
    row.update(event.row or {})
    parts = [row.get(c.source) for c in mapping.key_columns]
    return None if any(p is None for p in parts) else tuple(str(p) for p in parts)


class VisibilityIndex:
    """Per (table, key): audit positions sorted, with the earliest time at or after each one."""

    def __init__(self, applied: Iterable[Applied]) -> None:
        grouped: dict[tuple[str, Key], list[tuple[bytes, datetime]]] = defaultdict(list)
        for a in applied:
            grouped[(a.sink_table, a.key)].append((a.position, a.at))
        self._index: dict[tuple[str, Key], tuple[list[bytes], list[datetime]]] = {}
        for slot, entries in grouped.items():
            entries.sort()
            earliest: list[datetime] = [entries[-1][1]] * len(entries)
            for i in range(len(entries) - 2, -1, -1):
                earliest[i] = min(entries[i][1], earliest[i + 1])
            self._index[slot] = ([p for p, _ in entries], earliest)

    def visible_at(self, sink_table: str, key: Key, position: bytes) -> datetime | None:
        found = self._index.get((sink_table, key))
        if found is None:
            return None
        positions, earliest = found
        i = bisect.bisect_left(positions, position)
        return earliest[i] if i < len(positions) else None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (``q`` in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


@dataclass(frozen=True)
class LatencyStats:
    measured: int
    unmatched: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    imprecise: int = 0  # changes left out: only a whole-second commit time (whole_second_clock)


def latency_stats(samples_s: Iterable[float], unmatched: int, imprecise: int = 0) -> LatencyStats:
    values = sorted(s * 1000 for s in samples_s)
    return LatencyStats(
        len(values),
        unmatched,
        percentile(values, 50),
        percentile(values, 95),
        percentile(values, 99),
        values[-1] if values else float("nan"),
        imprecise,
    )
