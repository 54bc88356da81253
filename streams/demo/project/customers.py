"""``public.customers`` row changes → CustomerRegistered / EmailChanged / ProfileUpdated / Deleted.

Pure. Snapshot reads count as registrations (a consumer starting from scratch must learn every
customer). ``public.customers`` keeps PostgreSQL's default replica identity (fault scenario S3 in
tests/faults/README.md must hold with it), so Debezium sends updates without a ``before`` image;
the worker rebuilds one from the sink's previous row (``streams.sinks.previous``), and then an
email change is emitted only when the email really changed, a profile update only when name or
phone did. When no honest ``before`` exists (a replay behind the sink, an unknown customer) the
transform emits the current email (``old_email`` null, as the contract allows) and the current
profile fields. Changes to columns outside the contracts (tier, timestamps, bio, …) produce no
event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.project import (
    ChangeEvent,
    DomainEvent,
    HandlerRegistry,
    Op,
    TransformError,
    domain_event,
    domain_topic,
    event_id,
    position_record,
    source_name,
    version_of,
)

TOPIC = domain_topic("customers")
SOURCE_TABLE = "public.customers"
NAMESPACE = "dev.changefeed.customers"
# The columns ``_updated`` compares between before and after: all a rebuilt ``before`` needs.
BEFORE_COLUMNS = frozenset({"email", "first_name", "last_name", "phone"})


def _full_name(row: Mapping[str, Any]) -> str:
    """First and last name joined by a space; a missing or empty part is left out."""
    first, last = row.get("first_name"), row.get("last_name")
    if first and last:
        return f"{first} {last}"
    return first or last or ""


def _customer_id(event: ChangeEvent) -> int:
    row = event.row or {}
    if "id" in row:
        raw = row["id"]
    else:  # no id in the row image: the Kafka key still names the customer
        key = event.key
        raw = key.get("id") if isinstance(key, Mapping) else None
    if not isinstance(raw, int):
        msg = f"customer change without an integer id at {event.origin}"
        raise TransformError(msg)
    return raw


def _event(change: ChangeEvent, name: str, customer_id: int, data: dict[str, Any]) -> DomainEvent:
    assert change.source_ts is not None or change.ts is not None
    # domain_event: the DomainEvent constructor's result, without its frozen __init__ (per event).
    return domain_event(
        TOPIC,
        f"{NAMESPACE}.{name}",
        event_id(change.table_id, customer_id, change.position, name),
        source_name(change),
        change.source_ts or change.ts,  # type: ignore[arg-type]  # asserted above
        str(customer_id),
        version_of(change.position),
        position_record(change),
        {"customer_id": customer_id, **data},
    )


def _updated(change: ChangeEvent, cid: int, after: Mapping[str, Any]) -> list[DomainEvent]:
    before = change.before
    out: list[DomainEvent] = []
    if before is None or before.get("email") != after.get("email"):
        old = None if before is None else before.get("email")
        out.append(
            _event(change, "CustomerEmailChanged", cid, {"old_email": old, "new_email": after["email"]})
        )
    profile: dict[str, Any] = {}
    if before is None or _full_name(before) != _full_name(after):
        profile["full_name"] = _full_name(after)
    if before is None or before.get("phone") != after.get("phone"):
        profile["phone"] = after.get("phone")
    if profile:
        out.append(_event(change, "CustomerProfileUpdated", cid, {"country": None, **profile}))
    return out


def customer_events(change: ChangeEvent) -> list[DomainEvent]:
    """The domain events one customers row change means."""
    if change.tombstone or change.op is Op.TRUNCATE:
        return []
    cid = _customer_id(change)
    if change.op is Op.DELETE:
        return [_event(change, "CustomerDeleted", cid, {})]
    after = change.after or {}
    if not isinstance(after.get("email"), str):
        msg = f"customer {cid} without an email at {change.origin}"
        raise TransformError(msg)
    if change.op in (Op.CREATE, Op.READ):
        data = {"email": after["email"], "full_name": _full_name(after), "country": None}
        return [_event(change, "CustomerRegistered", cid, data)]
    return _updated(change, cid, after)


def register(registry: HandlerRegistry) -> None:
    registry.table(SOURCE_TABLE, customer_events, publishes=[TOPIC], before=BEFORE_COLUMNS)
