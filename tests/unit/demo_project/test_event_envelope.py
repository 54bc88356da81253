"""The cheaper constructions of event ids and DomainEvents give exactly the standard ones."""

from __future__ import annotations

import random
import uuid
from dataclasses import FrozenInstanceError, fields
from datetime import UTC, datetime

import pytest

from streams.cdc import SourceKind, SourcePosition
from streams.demo.project.customers import customer_events
from streams.project import DomainEvent, domain_event, event_id, position_record, source_name, version_of
from streams.project.events import _NAMESPACE, uuid5_text
from tests.unit.sinks.sink_events import pg_event


def _reference_event_id(*parts: object) -> str:
    """``event_id`` as it was: the standard library's uuid5 of the joined parts."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(str(p) for p in parts)))


def test_uuid5_text_is_the_standard_uuid5_on_many_names() -> None:
    rng = random.Random(5)
    alphabet = "abcXYZ019|:/ -_.é€😀\x00"
    names = ["", "a", "|", "x" * 1000] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80))) for _ in range(3000)
    ]
    for name in names:
        assert uuid5_text(name) == str(uuid.uuid5(_NAMESPACE, name))


def test_event_id_is_unchanged_for_real_coordinates() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        pg = SourcePosition(
            SourceKind.POSTGRES, (rng.randrange(2**40), rng.randrange(2**40), rng.randrange(2**32))
        )
        my = SourcePosition(SourceKind.MYSQL, (rng.randrange(99), rng.randrange(2**32), 1, rng.randrange(5)))
        for pos in (pg, my, None):
            parts = ("public.customers", rng.randrange(10**9), pos, "CustomerEmailChanged")
            assert event_id(*parts) == _reference_event_id(*parts)
    assert event_id("orders.orders", "ÄÖ", 1.5) == _reference_event_id("orders.orders", "ÄÖ", 1.5)


def test_domain_event_equals_the_constructor_and_stays_frozen() -> None:
    values = {
        "topic": "domain.customers",
        "record": "dev.changefeed.customers.CustomerRegistered",
        "id": "i",
        "source": "s",
        "time": datetime(2026, 11, 30, tzinfo=UTC),
        "subject": "7",
        "version": 42,
        "position": {"system": "POSTGRESQL"},
        "data": {"customer_id": 7},
    }
    assert [f.name for f in fields(DomainEvent)] == list(values)  # no field left out, same order
    fast = domain_event(*values.values())
    assert fast == DomainEvent(**values)
    assert fast.to_avro() == DomainEvent(**values).to_avro()
    with pytest.raises(FrozenInstanceError):
        fast.id = "other"  # type: ignore[misc]


def test_customer_events_carry_the_same_ids_and_envelopes_as_before() -> None:
    row = {"id": 7, "email": "a@x.test", "first_name": "Ada", "last_name": "L", "phone": None}
    for op, lsn in (("c", 10), ("r", 11), ("u", 12), ("d", 13)):
        change = pg_event(op, row, lsn)
        for e in customer_events(change):
            name = e.record.rsplit(".", 1)[1]
            assert e.id == _reference_event_id("public.customers", 7, change.position, name)
            assert e == DomainEvent(
                topic="domain.customers",
                record=e.record,
                id=e.id,
                source=source_name(change),
                time=change.source_ts or change.ts,  # type: ignore[arg-type]
                subject="7",
                version=version_of(change.position),
                position=position_record(change),
                data=e.data,
            )
            assert e.data["customer_id"] == 7
