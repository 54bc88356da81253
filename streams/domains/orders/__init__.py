"""The orders domain: outbox events of aggregate ``order`` as past-tense order events."""

from streams.domains.orders.transforms import AGGREGATE, TOPIC, order_events, register

__all__ = ["AGGREGATE", "TOPIC", "order_events", "register"]
