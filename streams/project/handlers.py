"""The handler registry: which transform handles which source table or outbox aggregate type.

A project's transform modules each define ``register(registry)`` and call ``table`` / ``outbox``
on it (``streams.project.load_transforms`` imports them by name). What they register also tells
the worker what to subscribe to (the tables' change topics, ``outbox.event.<aggregate>``), which
domain topics to create (``publishes``) and which columns of a table's previous row to rebuild
for updates that carry no ``before`` image (``before``). Tables and aggregate types nobody
registered are counted, never crashed on: a new table in a connector's include list must not
stop the pipeline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from streams.cdc import ChangeEvent
from streams.project.events import DomainEvent, OutboxMessage

TableTransform = Callable[[ChangeEvent], Sequence[DomainEvent]]
OutboxTransform = Callable[[OutboxMessage], Sequence[DomainEvent]]


class HandlerRegistry:
    def __init__(self) -> None:
        self.tables: dict[str, TableTransform] = {}
        self.aggregates: dict[str, OutboxTransform] = {}
        self.before: dict[str, frozenset[str]] = {}
        self.domain_topics: set[str] = set()
        self.unmapped: Counter[str] = Counter()

    def table(
        self,
        table_id: str,
        transform: TableTransform,
        *,
        publishes: Iterable[str] = (),
        before: Iterable[str] = (),
    ) -> None:
        """``transform`` turns each row change of ``table_id`` (``schema.table``) into domain events.

        ``publishes``: the domain topics it writes (created at start). ``before``: the columns it
        compares between the previous and the new row; for updates without a ``before`` image
        (PostgreSQL's default replica identity) the worker rebuilds them from the sink.
        """
        self.tables[table_id] = transform
        self.domain_topics.update(publishes)
        if before:
            self.before[table_id] = frozenset(before)

    def outbox(
        self, aggregate_type: str, transform: OutboxTransform, *, publishes: Iterable[str] = ()
    ) -> None:
        """``transform`` turns the outbox messages of ``aggregate_type`` into domain events."""
        self.aggregates[aggregate_type] = transform
        self.domain_topics.update(publishes)

    aggregate = outbox  # the name milestone 1 used

    def for_change(self, event: ChangeEvent) -> list[DomainEvent]:
        """Domain events for a row change; ``TransformError`` (poison) if the transform rejects it."""
        if event.tombstone:
            return []
        transform = self.tables.get(event.table_id)
        if transform is None:
            self.unmapped[event.table_id] += 1
            return []
        return list(transform(event))

    def for_outbox(self, message: OutboxMessage) -> list[DomainEvent]:
        transform = self.aggregates.get(message.aggregate_type)
        if transform is None:
            self.unmapped[f"outbox:{message.aggregate_type}"] += 1
            return []
        return list(transform(message))
