"""The durable log the registry writes through, and an in-memory one for unit tests.

Contract: ``append`` returns only after the record has been read back and applied to the store,
so the caller answers from state the log already holds (write-then-read-back, as Karapace does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Apply = Callable[[bytes, bytes | None], None]


class SchemaLog(Protocol):
    async def start(self, apply: Apply) -> None:
        """Replay the whole log into ``apply``; return once caught up with its end."""

    async def append(self, key: bytes, value: bytes | None) -> None:
        """Write one record; return after ``apply`` has seen it."""

    async def stop(self) -> None: ...


class MemoryLog:
    """A log kept in a list: replayable, so tests can prove a restart rebuilds the same state."""

    def __init__(self) -> None:
        self.entries: list[tuple[bytes, bytes | None]] = []
        self._apply: Apply | None = None

    async def start(self, apply: Apply) -> None:
        self._apply = apply
        for key, value in self.entries:
            apply(key, value)

    async def append(self, key: bytes, value: bytes | None) -> None:
        if self._apply is None:
            msg = "MemoryLog.append before start"
            raise RuntimeError(msg)
        self.entries.append((key, value))
        self._apply(key, value)

    async def stop(self) -> None:
        self._apply = None
