"""Pure customers transforms: one row change → the past-tense events it means."""

from __future__ import annotations

from typing import Any

import pytest

from streams.cdc import parse_change_event
from streams.demo.project import demo_registry
from streams.demo.project.customers import customer_events
from streams.errors import TransformError

ROW = {"id": 7, "email": "a@x.test", "first_name": "Ada", "last_name": "Byron", "phone": None, "tier": "gold"}
SOURCE = {
    "connector": "postgresql", "name": "customers", "schema": "public", "table": "customers",
    "sequence": '["100","120"]', "txId": 9, "ts_us": 1_700_000_000_000_000,
}  # fmt: skip


def change(op: str, before: dict[str, Any] | None, after: dict[str, Any] | None, offset: int = 3) -> Any:
    value = {"op": op, "before": before, "after": after, "source": SOURCE, "ts_ms": 1_700_000_000_001}
    return parse_change_event(
        value, key={"id": 7}, topic="customers.public.customers", partition=0, offset=offset
    )


def names(events: list[Any]) -> list[str]:
    return [e.record.rsplit(".", 1)[1] for e in events]


def test_insert_and_snapshot_register_the_customer() -> None:
    for op in ("c", "r"):
        (e,) = customer_events(change(op, None, ROW))
        assert e.record == "dev.changefeed.customers.CustomerRegistered"
        assert e.topic == "domain.customers"
        assert e.subject == "7"
        assert e.data == {"customer_id": 7, "email": "a@x.test", "full_name": "Ada Byron", "country": None}
        assert e.position["system"] == "POSTGRESQL"
        assert e.position["lsn"] == 120
        assert e.version == 120
        assert e.time.tzinfo is not None


def test_email_change_with_before_image_is_only_an_email_change() -> None:
    events = customer_events(change("u", ROW, {**ROW, "email": "b@x.test"}))
    assert names(events) == ["CustomerEmailChanged"]
    assert events[0].data == {"customer_id": 7, "old_email": "a@x.test", "new_email": "b@x.test"}


def test_profile_change_sets_only_changed_fields() -> None:
    (e,) = customer_events(change("u", ROW, {**ROW, "phone": "+4930123"}))
    assert names([e]) == ["CustomerProfileUpdated"]
    assert e.data == {"customer_id": 7, "country": None, "phone": "+4930123"}


def test_update_without_before_image_reports_current_state() -> None:
    assert names(customer_events(change("u", None, ROW))) == [
        "CustomerEmailChanged",
        "CustomerProfileUpdated",
    ]


def test_tier_only_change_is_no_domain_event() -> None:
    assert customer_events(change("u", ROW, {**ROW, "tier": "silver"})) == []


def test_delete_and_tombstone() -> None:
    assert names(customer_events(change("d", ROW, None))) == ["CustomerDeleted"]
    tomb = parse_change_event(None, key={"id": 7}, topic="t", partition=0, offset=4)
    assert customer_events(tomb) == []


def test_event_ids_are_deterministic_so_replays_deduplicate() -> None:
    assert customer_events(change("c", None, ROW))[0].id == customer_events(change("c", None, ROW, 99))[0].id


def test_missing_email_is_rejected_as_poison() -> None:
    with pytest.raises(TransformError):
        customer_events(change("c", None, {**ROW, "email": None}))


def test_registry_counts_unmapped_tables() -> None:
    registry = demo_registry()
    other = change("c", None, ROW)
    other = type(other)(**{**other.__dict__, "table_id": "public.other"})
    assert registry.for_change(other) == []
    assert registry.unmapped["public.other"] == 1
