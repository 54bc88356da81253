"""The loop's per-batch record indexes (used only when a record is dead-lettered)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from streams.pipeline.batch_index import RecordsByOffset, oldest_by_partition


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: int


def test_oldest_timestamp_per_partition_in_any_order() -> None:
    records = [
        Rec("a", 0, 1, 50),
        Rec("a", 0, 2, 40),
        Rec("a", 1, 7, 90),
        Rec("a", 0, 3, 30),
        Rec("b", 0, 1, 5),
    ]
    assert oldest_by_partition(records) == {("a", 0): 30, ("a", 1): 90, ("b", 0): 5}
    assert oldest_by_partition([]) == {}


def test_records_by_offset_finds_every_record_and_refuses_others() -> None:
    records = [Rec("a", 0, 1, 0), Rec("a", 1, 1, 0), Rec("b", 0, 9, 0)]
    index = RecordsByOffset(records)
    assert index[("a", 1, 1)] is records[1]
    assert index[("b", 0, 9)] is records[2]
    with pytest.raises(KeyError):
        index[("a", 0, 2)]
    with pytest.raises(KeyError):  # still refused once built
        index[("c", 0, 0)]
