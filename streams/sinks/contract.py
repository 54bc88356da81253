"""The sink contract: ``add`` buffers, ``flush`` makes everything buffered durable at commit.

A flush that raises means nothing was committed — neither rows nor offsets — so the caller must
not commit Kafka offsets either; it retries (``TransientError``) or dead-letters the one record
named by the error and calls ``drop`` (``PermanentError``), then flushes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from streams.cdc import ChangeEvent


@dataclass(frozen=True)
class Conflict:
    """A write the version guard refused (or, under last-writer-wins, a regression it allowed)."""

    sink_table: str
    source_table: str
    key: dict[str, object]
    reason: str  # stale | concurrent | overwrote_newer
    policy: str
    stored_position: bytes | None
    incoming_position: bytes
    topic: str
    partition: int
    offset: int


@dataclass
class FlushResult:
    """What one committed flush did; ``offsets`` are the next offsets to consume per partition."""

    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    applied: int = 0
    duplicates: int = 0  # same position already stored (a redelivery)
    superseded: int = 0  # dropped inside the batch by a newer event of the same key
    written: dict[str, int] = field(default_factory=dict)  # sink table -> de-duplicated writes sent
    conflicts: list[Conflict] = field(default_factory=list)
    # (sink table, source column) -> events whose writer schema lacked that mapped column
    missing: dict[tuple[str, str], int] = field(default_factory=dict)
    truncates: list[tuple[str, str, int]] = field(default_factory=list)  # (sink table, applied|ignored, rows)
    reconciled: int = 0  # rows a completed snapshot did not contain, removed (streams.sinks.reconcile)

    @property
    def stale(self) -> int:
        return sum(c.reason != "overwrote_newer" for c in self.conflicts)


class Sink(Protocol):
    """What an agent needs from a sink."""

    def add(self, partition: int, record: ChangeEvent) -> None: ...

    def flush(self) -> FlushResult: ...
