"""Pure orders transforms: outbox messages → order events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from streams.demo.project import demo_registry
from streams.demo.project.orders import order_events
from streams.demo.project.payloads import check_payload
from streams.errors import TransformError
from streams.project import OutboxMessage

AT = datetime(2026, 1, 2, tzinfo=UTC)


def message(event_type: str, payload: dict[str, Any], aggregate: str = "order") -> OutboxMessage:
    return OutboxMessage(aggregate, "6", event_type, "74bdc956-d0b6-47cc-8c0e-df94fb285ff2", payload, AT,
                         f"outbox.event.{aggregate}", 0, 11)  # fmt: skip


def test_order_placed_from_the_outbox() -> None:
    (e,) = order_events(message("OrderPlaced", {"order_id": 6, "customer_id": 1, "total_minor": 1234,
                                                "currency": "EUR", "item_count": 1}))  # fmt: skip
    assert e.topic == "domain.orders"
    assert e.record == "dev.changefeed.orders.OrderPlaced"
    assert e.id == "74bdc956-d0b6-47cc-8c0e-df94fb285ff2"
    assert e.subject == "6"
    assert e.version == 11
    assert e.data == {
        "order_id": 6,
        "customer_id": 1,
        "total_minor": 1234,
        "currency": "EUR",
        "item_count": 1,
    }


def test_status_payloads_map_to_the_domain_statuses() -> None:
    (changed,) = order_events(message("OrderStatusChanged", {"order_id": 6, "status": "shipped"}))
    assert changed.data == {"order_id": 6, "old_status": None, "new_status": "SHIPPED"}
    (odd,) = order_events(message("OrderStatusChanged", {"order_id": 6, "status": "lost"}))
    assert odd.data["new_status"] == "UNKNOWN"


def test_cancelled_and_unknown_types() -> None:
    (e,) = order_events(message("OrderCancelled", {"order_id": 6}))
    assert e.data == {"order_id": 6, "reason": None}
    assert order_events(message("OrderRefunded", {"order_id": 6})) == []


def test_missing_order_id_is_poison() -> None:
    with pytest.raises(TransformError):
        order_events(message("OrderCancelled", {"id": 6}))


def test_unknown_aggregate_is_counted() -> None:
    registry = demo_registry()
    assert registry.for_outbox(message("X", {}, aggregate="invoice")) == []
    assert registry.unmapped["outbox:invoice"] == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"order_id": 6, "customer_id": 1, "total_minor": 5, "lines": 2, "currency": "EUR"},  # old name
        {"order_id": 6, "customer_id": 1, "total_minor": 5, "item_count": 2},  # no currency
        {"order_id": 6, "customer_id": 1, "total_minor": 5, "item_count": 2, "currency": "euro"},
        {"order_id": "6", "customer_id": 1, "total_minor": 5, "item_count": 2, "currency": "EUR"},
        {"order_id": 6, "customer_id": True, "total_minor": 5, "item_count": 2, "currency": "EUR"},
    ],
)
def test_placed_payloads_violating_the_contract_are_poison(payload: dict[str, Any]) -> None:
    with pytest.raises(TransformError, match=r"OrderPlacedPayload\.avsc"):
        order_events(message("OrderPlaced", payload))


def test_the_load_generators_payloads_follow_the_contract() -> None:
    from streams.load.orders import placed_payload

    payload = placed_payload(6, 1, 1999, "CHF", 3)
    check_payload("OrderPlaced", payload, "test")
    (e,) = order_events(message("OrderPlaced", payload))
    assert e.data == {
        "order_id": 6,
        "customer_id": 1,
        "total_minor": 1999,
        "currency": "CHF",
        "item_count": 3,
    }
    for event_type in ("OrderStatusChanged", "OrderCancelled"):
        check_payload(event_type, {"order_id": 6, "status": "shipped"}, "test")


def test_a_contract_violation_is_dead_lettered_by_the_handler() -> None:
    """The handler raises the permanent ``TransformError``: the loop's signal to dead-letter."""
    from streams.errors import PermanentError

    assert issubclass(TransformError, PermanentError)
    with pytest.raises(TransformError):
        order_events(message("OrderStatusChanged", {"order_id": 6}))
