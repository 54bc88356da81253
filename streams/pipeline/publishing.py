"""A batch's domain events: staged per record while the batch is handled, published before its flush.

The loop stages each record's domain events (``DomainEvent``, not yet encoded) and, once every
record is handled, awaits ``publish``: it returns when the broker acked every event that could be
encoded, and names the records whose events could not (an event that does not fit its contract,
is over the broker's size limit, or whose subject is not registered). Those records are poison:
the loop dead-letters them; their rows stay in the sink batch, as when encoding ran per record.
A transient failure (broker or registry away, events not acked) raises ``TransientError`` and the
loop calls ``publish`` again, which sends the whole batch again (at least once: consumers
de-duplicate by ``ce_id``).

Two producers: ``InlineEvents`` encodes in the worker's process (``[worker] publisher =
"inline"``, the default), ``streams.pipeline.events_proc.ProcessEvents`` in a child process
while the worker goes on handling the batch (``"process"``: encoding is a third of the worker's
CPU per published event; see streams/pipeline/README.md for what the child costs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from streams.errors import MessageOrigin, TransformError, TransientError
from streams.pipeline.deadletter import record_size
from streams.pipeline.events_out import EventSender
from streams.pipeline.publisher import Encoders, Outgoing
from streams.project.events import DomainEvent

Origin = tuple[str, int, int]  # the record's topic, partition and offset
Refusal = tuple[Origin, Exception]  # a record whose domain events could not be published, and why


class EventProducer(Protocol):
    def begin(self) -> None:
        """A new batch: forget what the last one staged."""

    def stage(self, origin: Origin, events: Sequence[DomainEvent]) -> None:
        """The domain events of the record at ``origin``, in order."""

    async def publish(self) -> list[Refusal]:
        """Every staged event acked, but those of the records returned (poison); raise if not acked."""

    async def close(self) -> None: ...


def encode_events(
    origin: Origin, events: Sequence[DomainEvent], encoders: Encoders, max_bytes: int
) -> list[Outgoing]:
    """One record's events, encoded; ``TransformError`` if one does not fit its contract or the broker.

    All or none: a record whose second event fails publishes neither. ``TransientError`` (the
    registry away) and ``ConfigError`` (a subject not registered) pass through as they are.
    """
    try:
        out = [Outgoing.of(e, encoders) for e in events]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # fastavro's encode errors
        msg = f"domain event does not fit its contract at {MessageOrigin(*origin)}: {exc!r}"
        raise TransformError(msg) from exc
    for o in out:
        size = record_size(o.key, o.value, o.headers)
        if size > max_bytes:
            msg = (
                f"domain event for {o.topic} of {size} bytes exceeds the broker's limit"
                f" ({max_bytes} bytes) at {MessageOrigin(*origin)}"
            )
            raise TransformError(msg)
    return out


def encode_staged(
    staged: Sequence[tuple[Origin, Sequence[DomainEvent]]], encoders: Encoders, max_bytes: int
) -> tuple[list[Outgoing], list[Refusal]]:
    """Every record's events encoded, and the records refused; a transient failure raises."""
    out: list[Outgoing] = []
    refused: list[Refusal] = []
    for origin, events in staged:
        try:
            out += encode_events(origin, events, encoders, max_bytes)
        except TransientError:
            raise
        except Exception as exc:  # any other failure is this record's poison
            refused.append((origin, exc))
    return out, refused


class InlineEvents:
    """Encodes in the worker's process, then sends through ``sender``."""

    def __init__(self, sender: EventSender, encoders: Encoders | None, max_bytes: int) -> None:
        self.sender = sender
        self.encoders = encoders
        self.max_bytes = max_bytes
        self._staged: list[tuple[Origin, Sequence[DomainEvent]]] = []
        # Encoded once per batch: a retried publish sends the same bytes again.
        self._encoded: tuple[list[Outgoing], list[Refusal]] | None = None

    def begin(self) -> None:
        self._staged = []
        self._encoded = None

    def stage(self, origin: Origin, events: Sequence[DomainEvent]) -> None:
        self._staged.append((origin, events))
        self._encoded = None

    async def publish(self) -> list[Refusal]:
        if not self._staged:
            return []
        if self.encoders is None:
            msg = "domain events staged with publishing off"
            raise RuntimeError(msg)
        if self._encoded is None:
            self._encoded = encode_staged(self._staged, self.encoders, self.max_bytes)
        out, refused = self._encoded
        if out:
            await self.sender.publish(out)
        return refused

    async def close(self) -> None:
        await self.sender.close()
