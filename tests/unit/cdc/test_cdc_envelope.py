"""Envelope parsing: Avro-decoded dicts, the JSON converter's wrapper, tombstones, bad input."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.cdc import ChangeEvent, Op, SourceKind, parse_change_event
from streams.errors import DecodeError, EnvelopeError

PG_SOURCE = {
    "version": "3.1.0.Final",
    "connector": "postgresql",
    "name": "cf",
    "ts_ms": 1_700_000_000_123,
    "snapshot": "false",
    "db": "customers",
    "sequence": json.dumps(["24023128", "24023176"]),
    "schema": "public",
    "table": "customers",
    "txId": 771,
    "lsn": 24023176,
}
MARIADB_SOURCE = {
    "connector": "mariadb",
    "ts_ms": 1_700_000_000_000,
    "db": "orders",
    "table": "orders",
    "gtid": "0-1-42",
    "file": "mariadb-bin.000003",
    "pos": 1234,
    "row": 0,
}


def envelope(op: str, before: Any = None, after: Any = None, source: Any = None) -> dict[str, Any]:
    return {
        "before": before,
        "after": after,
        "source": PG_SOURCE if source is None else source,
        "op": op,
        "ts_ms": 1_700_000_001_000,
        "transaction": None,
    }


def test_avro_shaped_update_parses_with_aware_timestamps() -> None:
    ev = parse_change_event(
        envelope("u", {"id": 1, "email": "a"}, {"id": 1, "email": "b"}),
        key={"id": 1},
        topic="cf.public.customers",
        partition=2,
        offset=17,
    )
    assert ev.op is Op.UPDATE
    assert ev.after == {"id": 1, "email": "b"}
    assert ev.row == ev.after
    assert ev.ts == datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC)
    assert ev.source_ts is not None
    assert ev.source_ts.tzinfo is not None
    assert ev.source_ts.microsecond == 123_000
    assert ev.table_id == "public.customers"
    assert ev.position is not None
    assert ev.position.kind is SourceKind.POSTGRES
    assert (ev.origin.topic, ev.origin.partition, ev.origin.offset) == ("cf.public.customers", 2, 17)
    assert not ev.tombstone


def test_json_converter_wrapper_is_unwrapped_for_key_and_value() -> None:
    value = {"schema": {"type": "struct"}, "payload": envelope("c", None, {"id": 5})}
    key = {"schema": {"type": "struct"}, "payload": {"id": 5}}
    ev = parse_change_event(value, key=key)
    assert ev.op is Op.CREATE
    assert ev.key == {"id": 5}
    assert ev.after == {"id": 5}


def test_delete_row_is_the_before_image() -> None:
    ev = parse_change_event(envelope("d", {"id": 9}, None))
    assert ev.op is Op.DELETE
    assert ev.row == {"id": 9}


@pytest.mark.parametrize("value", [None, {"schema": None, "payload": None}])
def test_tombstone_is_explicit(value: Any) -> None:
    ev = parse_change_event(value, key={"id": 9}, topic="t", partition=0, offset=3)
    assert ev.tombstone
    assert ev.op is Op.DELETE
    assert ev.position is None
    assert ev.before is None
    assert ev.after is None
    assert ev.key == {"id": 9}


def test_truncate_and_snapshot_read() -> None:
    assert parse_change_event(envelope("t")).op is Op.TRUNCATE
    assert parse_change_event(envelope("r", None, {"id": 1})).op is Op.READ


def test_mariadb_event_table_id_uses_database() -> None:
    ev = parse_change_event(envelope("c", None, {"id": 1}, MARIADB_SOURCE))
    assert ev.table_id == "orders.orders"
    assert ev.position is not None
    assert ev.position.kind is SourceKind.MYSQL


def test_finer_timestamps_win() -> None:
    value = envelope("c", None, {"id": 1}) | {"ts_us": 1_700_000_001_000_001}
    assert parse_change_event(value).ts == datetime(2023, 11, 14, 22, 13, 21, 1, tzinfo=UTC)
    value = envelope("c", None, {"id": 1}) | {"ts_ns": 1_700_000_001_000_002_999}
    assert parse_change_event(value).ts == datetime(2023, 11, 14, 22, 13, 21, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("not a record", "not a record"),
        (envelope("x"), "unknown or missing op"),
        ({"op": "c", "after": {"id": 1}}, "without a source"),
        (envelope("c"), "without an after image"),
        (envelope("u", None, "oops"), "is not a record"),
        (envelope("d"), "delete without"),
        (envelope("c", None, {"id": 1}, {"connector": "oracle"}), "unsupported source connector"),
        (envelope("c", None, {"id": 1}, {**PG_SOURCE, "sequence": None}), "raw lsn alone"),
        (envelope("c", None, {"id": 1}, {**PG_SOURCE, "sequence": "[1"}), "not JSON"),
    ],
)
def test_malformed_envelopes_are_poison_with_origin(value: Any, needle: str) -> None:
    with pytest.raises(EnvelopeError, match=needle) as info:
        parse_change_event(value, topic="t", partition=1, offset=2)
    assert isinstance(info.value, DecodeError)
    assert str(info.value.origin) == "t[1]@2"


def test_event_is_frozen() -> None:
    ev = parse_change_event(envelope("c", None, {"id": 1}))
    assert isinstance(ev, ChangeEvent)
    with pytest.raises(AttributeError):
        ev.op = Op.DELETE  # type: ignore[misc]  # proving immutability


@pytest.mark.parametrize(
    "value",
    [
        envelope("c", None, {"id": 1}) | {"ts_us": 1_700_000_001_000_001},
        envelope("u", {"id": 1}, {"id": 1, "x": 2}, MARIADB_SOURCE),
        envelope("d", {"id": 1}),
        {"schema": {}, "payload": envelope("r", None, {"id": 3})},
        None,
    ],
)
def test_parsed_event_equals_the_dataclass_built_one(value: Any) -> None:
    """The parse builds its events without ``__init__`` (speed): every field is set, as by it."""
    types = {"x": "io.debezium.time.Date"}
    ev = parse_change_event(value, key={"id": 1}, topic="t", partition=1, offset=2, logical_types=types)
    expected = ChangeEvent(**{f.name: getattr(ev, f.name) for f in fields(ChangeEvent)})
    assert ev == expected
    assert vars(ev) == vars(expected)  # also the compare=False field, and no extra attribute
    assert hash(ev.position) == hash(expected.position)
    with pytest.raises(AttributeError):
        ev.topic = "other"  # type: ignore[misc]  # still frozen


@pytest.mark.parametrize("op", [None, ["c"], 1, "C"])
def test_odd_op_values_are_poison(op: Any) -> None:
    value = envelope("c", None, {"id": 1}) | {"op": op}
    with pytest.raises(EnvelopeError, match="unknown or missing op"):
        parse_change_event(value, topic="t", partition=1, offset=2)


def test_op_may_already_be_an_op() -> None:
    assert parse_change_event(envelope(Op.UPDATE, None, {"id": 1})).op is Op.UPDATE
