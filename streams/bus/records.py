"""Domain events as typed Faust ``Record`` s: the shared envelope plus each event's ``data``.

The classes mirror the contracts in ``schemas/`` (field names and types); ``RECORDS`` maps a
CloudEvents ``type`` (the Avro record's full name) to its class, and an event type that has no
class here decodes as ``UnknownEvent`` (``data`` a plain dict) rather than failing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import faust


class DomainEventRecord(faust.Record, abstract=True, coerce=True):
    """The envelope every domain event shares (``streams.project.events.DomainEvent``)."""

    id: str  # CloudEvents id: uuid5 of the source coordinates, stable across redeliveries
    type: str  # CloudEvents type: the Avro record's full name
    source: str
    time: datetime
    subject: str  # the entity id as text, also the Kafka key
    version: int
    position: dict[str, Any]


class CustomerRegisteredData(faust.Record, coerce=True):
    customer_id: int
    email: str
    full_name: str
    country: str | None = None


class CustomerEmailChangedData(faust.Record, coerce=True):
    customer_id: int
    new_email: str
    old_email: str | None = None


class CustomerProfileUpdatedData(faust.Record, coerce=True):
    customer_id: int
    full_name: str | None = None
    phone: str | None = None
    country: str | None = None


class CustomerDeletedData(faust.Record, coerce=True):
    customer_id: int


class OrderPlacedData(faust.Record, coerce=True):
    order_id: int
    customer_id: int
    total_minor: int
    currency: str
    item_count: int


class OrderStatusChangedData(faust.Record, coerce=True):
    order_id: int
    new_status: str
    old_status: str | None = None


class OrderCancelledData(faust.Record, coerce=True):
    order_id: int
    reason: str | None = None


class CustomerRegistered(DomainEventRecord):
    data: CustomerRegisteredData


class CustomerEmailChanged(DomainEventRecord):
    data: CustomerEmailChangedData


class CustomerProfileUpdated(DomainEventRecord):
    data: CustomerProfileUpdatedData


class CustomerDeleted(DomainEventRecord):
    data: CustomerDeletedData


class OrderPlaced(DomainEventRecord):
    data: OrderPlacedData


class OrderStatusChanged(DomainEventRecord):
    data: OrderStatusChangedData


class OrderCancelled(DomainEventRecord):
    data: OrderCancelledData


class UnknownEvent(DomainEventRecord):
    """An event type this package has no class for (a contract newer than the code)."""

    data: dict[str, Any]


CUSTOMERS = "dev.changefeed.customers."
ORDERS = "dev.changefeed.orders."
RECORDS: dict[str, type[DomainEventRecord]] = {
    CUSTOMERS + "CustomerRegistered": CustomerRegistered,
    CUSTOMERS + "CustomerEmailChanged": CustomerEmailChanged,
    CUSTOMERS + "CustomerProfileUpdated": CustomerProfileUpdated,
    CUSTOMERS + "CustomerDeleted": CustomerDeleted,
    ORDERS + "OrderPlaced": OrderPlaced,
    ORDERS + "OrderStatusChanged": OrderStatusChanged,
    ORDERS + "OrderCancelled": OrderCancelled,
}


def record_of(value: dict[str, Any]) -> DomainEventRecord:
    """The typed record for a decoded envelope (its ``type`` field picks the class)."""
    cls = RECORDS.get(str(value.get("type")), UnknownEvent)
    fields = {k: value[k] for k in cls._options.fields if k in value}
    record: DomainEventRecord = cls(**fields)
    return record
