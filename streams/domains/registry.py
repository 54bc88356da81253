"""The handler registry: which transform handles which source table or outbox aggregate type.

Each domain registers its transforms here (the "EventHandler" of the issue). Tables and aggregate
types nobody registered are counted, never crashed on: a new table in a connector's include list
must not stop the pipeline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from streams.cdc import ChangeEvent
from streams.domains.events import DomainEvent, OutboxMessage

TableTransform = Callable[[ChangeEvent], Sequence[DomainEvent]]
OutboxTransform = Callable[[OutboxMessage], Sequence[DomainEvent]]


class HandlerRegistry:
    def __init__(self) -> None:
        self.tables: dict[str, TableTransform] = {}
        self.aggregates: dict[str, OutboxTransform] = {}
        self.unmapped: Counter[str] = Counter()

    def table(self, table_id: str, transform: TableTransform) -> None:
        self.tables[table_id] = transform

    def aggregate(self, aggregate_type: str, transform: OutboxTransform) -> None:
        self.aggregates[aggregate_type] = transform

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


def default_registry() -> HandlerRegistry:
    """Every demo domain's handlers."""
    from streams.domains import customers, orders

    registry = HandlerRegistry()
    customers.register(registry)
    orders.register(registry)
    return registry
