"""Outbox events of aggregate type ``order`` → OrderPlaced / OrderStatusChanged / OrderCancelled.

Pure. The orders service writes each business change and its outbox row in one transaction, so
the outbox — not a diff of the ``orders`` rows — is the source of order events (the row changes
are materialized by the shipping mappings instead; deriving events from both would duplicate
them). The event id is the outbox row's own id. The EventRouter drops the source block, so an
outbox event has no binlog coordinates: its version is its offset in the outbox topic, which is
keyed by order id and therefore ordered per order. Payloads follow the orders service's
contract in ``schemas/orders/outbox/`` (checked by ``payloads.check_payload``; violations are
poison and go to the dead-letter topic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streams.demo.project.payloads import check_payload
from streams.project import DomainEvent, HandlerRegistry, OutboxMessage, TransformError, domain_topic

TOPIC = domain_topic("orders")
AGGREGATE = "order"
NAMESPACE = "dev.changefeed.orders"
STATUSES = frozenset({"PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"})


def _field(msg: OutboxMessage, name: str, kind: type) -> Any:
    value = msg.payload.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        want = kind.__name__
        where = f"{msg.topic}[{msg.partition}]@{msg.offset}"
        text = f"outbox {msg.event_type} without {want} field {name!r} at {where}"
        raise TransformError(text)
    return value


def _status(value: object) -> str | None:
    if value is None:
        return None
    upper = str(value).upper()
    return upper if upper in STATUSES else "UNKNOWN"


def _placed(msg: OutboxMessage) -> dict[str, Any]:
    return {
        "customer_id": _field(msg, "customer_id", int),
        "total_minor": _field(msg, "total_minor", int),
        "currency": _field(msg, "currency", str),
        "item_count": _field(msg, "item_count", int),
    }


def _status_changed(msg: OutboxMessage) -> dict[str, Any]:
    new = _status(_field(msg, "status", str))
    return {"old_status": _status(msg.payload.get("old_status")), "new_status": new}


def _cancelled(msg: OutboxMessage) -> dict[str, Any]:
    reason = msg.payload.get("reason")
    return {"reason": None if reason is None else str(reason)}


_DATA: Mapping[str, Callable[[OutboxMessage], dict[str, Any]]] = {
    "OrderPlaced": _placed,
    "OrderStatusChanged": _status_changed,
    "OrderCancelled": _cancelled,
}


def order_events(msg: OutboxMessage) -> list[DomainEvent]:
    """The domain event of one outbox message; unknown event types yield nothing."""
    build = _DATA.get(msg.event_type)
    if build is None:
        return []
    check_payload(msg.event_type, msg.payload, f"{msg.topic}[{msg.partition}]@{msg.offset}")
    order_id = _field(msg, "order_id", int)
    return [
        DomainEvent(
            topic=TOPIC,
            record=f"{NAMESPACE}.{msg.event_type}",
            id=msg.event_id,
            source=f"orders-outbox/{msg.aggregate_type}",
            time=msg.timestamp,
            subject=str(order_id),
            version=msg.offset,
            position={"system": "MARIADB"},
            data={"order_id": order_id, **build(msg)},
        )
    ]


def register(registry: HandlerRegistry) -> None:
    registry.outbox(AGGREGATE, order_events, publishes=[TOPIC])
