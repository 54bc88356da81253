"""Domains: pure transforms from change events (and outbox messages) to domain events."""

from streams.domains.events import DomainEvent, OutboxMessage, event_id, position_record, version_of
from streams.domains.registry import HandlerRegistry, default_registry

__all__ = [
    "DomainEvent",
    "HandlerRegistry",
    "OutboxMessage",
    "default_registry",
    "event_id",
    "position_record",
    "version_of",
]
