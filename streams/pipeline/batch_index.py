"""Per-batch indexes of a poll's records, built without Python work per record where possible.

Only a poison record (rare) needs to find its record by offset, so that index is built on the
first lookup; the oldest timestamp per partition is one C-level ``min`` per partition run (a
poll's records come grouped by partition).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

_partition_of = attrgetter("topic", "partition")
_timestamp_of = attrgetter("timestamp")


def oldest_by_partition(records: Sequence[Any]) -> dict[tuple[str, int], int]:
    """(topic, partition) → the smallest record timestamp, in any record order."""
    out: dict[tuple[str, int], int] = {}
    for key, run in itertools.groupby(records, _partition_of):
        first = min(map(_timestamp_of, run))
        out[key] = min(out.get(key, first), first)
    return out


class RecordsByOffset(dict[tuple[str, int, int], Any]):
    """(topic, partition, offset) → record, filled on the first lookup of a key it lacks."""

    def __init__(self, records: Sequence[Any]) -> None:
        super().__init__()
        self._records: Sequence[Any] | None = records

    def __missing__(self, key: tuple[str, int, int]) -> Any:
        records, self._records = self._records, None
        if records is None:
            raise KeyError(key)
        self.update(((r.topic, r.partition, r.offset), r) for r in records)
        return self[key]
