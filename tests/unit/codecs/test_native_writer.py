"""The native Avro writer writes fastavro's bytes, and leaves to fastavro every value it does not
cover (the native module is built by `make install`: these tests require it)."""

from __future__ import annotations

import enum
import json
import random
import uuid
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import changefeed_avro
import pytest
from fastavro import parse_schema, schemaless_writer

from streams.codecs import AvroEncoder
from streams.codecs.plan import Unsupported, writer_plan
from tests.unit.codecs.test_fastread import ENVELOPE, VALUE, _records, _row

ROOT = Path(__file__).resolve().parents[3]
HEADER = b"\x00\x00\x00\x00\x07"


def _fastavro(schema: Any, record: Any) -> bytes:
    buffer = BytesIO()
    buffer.write(HEADER)
    schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


def _native(schema: Any) -> Any:
    return changefeed_avro.Writer(writer_plan(schema), HEADER)


def _domain_schema() -> Any:
    """CustomerRegistered as the registry serves it: SourcePosition inlined as a named type."""
    position = json.loads((ROOT / "schemas/common/SourcePosition.avsc").read_text())
    event = json.loads((ROOT / "schemas/customers/CustomerRegistered.avsc").read_text())
    named: dict[str, Any] = {}
    parse_schema(position, named_schemas=named)
    return parse_schema(event, named_schemas=named)


def _event(rng: random.Random) -> dict[str, Any]:
    pg = rng.random() < 0.5
    position: dict[str, Any] = (
        {"system": "POSTGRESQL", "commit_lsn": rng.randrange(2**40), "lsn": rng.randrange(2**40), "tx_id": 7}
        if pg
        else {
            "system": "MARIADB",
            "gtid": "0-1-42",
            "binlog_file": "b.000001",
            "binlog_pos": 4,
            "binlog_row": 0,
        }
    )
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
        "type": "dev.changefeed.customers.CustomerRegistered",
        "source": "customers-postgres/public.customers",
        "time": datetime(2026, 11, 30, 22, 0, 0, rng.randrange(10**6), tzinfo=UTC),
        "subject": str(rng.randrange(10**6)),
        "version": rng.randrange(2**62),
        "position": position,  # the other system's fields left out: their default (null)
        "data": {
            "customer_id": rng.randrange(10**6),
            "email": rng.choice(["a@b.test", "ünï©ødé ✓@x.test"]),
            "full_name": "A B",
            "country": rng.choice([None, "DE"]),
        },
    }


def test_domain_events_natively_with_fastavros_bytes() -> None:
    schema = _domain_schema()
    writer = _native(schema)
    rng = random.Random(3)
    for _ in range(300):
        event = _event(rng)
        got = writer.encode(event)
        assert got is not None  # covered: what the pipeline publishes takes the native path
        assert got == _fastavro(schema, event)


def test_debezium_rows_with_fastavros_bytes_or_left_to_it() -> None:
    """Every type (decimal, date, uuid, enum, fixed, arrays, maps, unions); a union with a
    logical-type branch is written natively only for None."""
    schema = parse_schema(ENVELOPE)
    writer = _native(schema)
    native = 0
    for record in _records(300):
        got = writer.encode(record)
        if got is not None:
            native += 1
            assert got == _fastavro(schema, record)
    assert native > 50  # those whose decimal is None


def test_primitives_blocks_and_unions() -> None:
    rng = random.Random(11)
    value = parse_schema(VALUE)
    row = _row(rng)
    row["credit"] = None
    cases: list[tuple[Any, Any]] = [
        ("string", "outbox JSON ✓"),
        ("long", -(2**63)),
        ("long", 2**63 - 1),
        ("int", -(2**31)),
        ("null", None),
        ("boolean", True),
        ("float", 1.5),
        ("double", -0.0),
        ("bytes", b"\x00\xff"),
        ({"type": "array", "items": "long"}, list(range(-70, 70))),
        ({"type": "array", "items": "long"}, []),
        ({"type": "map", "values": ["null", "string"]}, {"a": None, "b": "x"}),
        ({"type": "map", "values": "long"}, {}),
        (["null", "string", "long", "double", "boolean", "bytes"], 3.5),
        (["string", "null"], None),
        (value, row),
    ]
    for schema, record in cases:
        parsed = parse_schema(schema)
        got = _native(parsed).encode(record)
        assert got is not None, (schema, record)
        assert got == _fastavro(parsed, record)


class Tier(enum.StrEnum):
    A = "A"


@pytest.mark.parametrize(
    ("schema", "record"),
    [
        ("double", 1),  # fastavro converts; the native writer takes exact types only
        ("long", True),
        ("long", 2**64),
        ("int", 2**31),
        ("string", Tier.A),  # a str subclass
        ("string", "\ud800"),  # a lone surrogate does not encode
        ("float", 1e300),  # no float32 for it
        ({"type": "enum", "name": "E", "symbols": ["a"]}, "b"),
        ({"type": "fixed", "name": "F", "size": 2}, b"abc"),
        ({"type": "array", "items": "long"}, (1, 2)),
        (
            ["null", {"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]}],
            {"-type": "R", "a": 1},
        ),
        (["null", "string"], ("string", "x")),  # fastavro's tuple notation
        (["null", "long"], "x"),
        ({"type": "record", "name": "Q", "fields": [{"name": "a", "type": "long"}]}, {}),
        ({"type": "record", "name": "Q2", "fields": [{"name": "a", "type": "long"}]}, [("a", 1)]),
    ],
)
def test_values_it_does_not_cover_are_left_to_fastavro(schema: Any, record: Any) -> None:
    parsed = parse_schema(schema)
    assert _native(parsed).encode(record) is None
    encoder = AvroEncoder(7, parsed)
    try:
        expected: Any = _fastavro(parsed, record)
    except Exception as exc:
        with pytest.raises(type(exc)):
            encoder.encode(record)
    else:
        assert encoder.encode(record) == expected


def test_missing_fields_take_fastavros_defaults() -> None:
    schema = parse_schema(
        {
            "type": "record",
            "name": "D",
            "fields": [
                {"name": "a", "type": ["null", "long"]},  # no default, "null" in the type: None
                {"name": "b", "type": "string", "default": "x"},
                {"name": "c", "type": ["string", "null"], "default": "y"},
            ],
        }
    )
    got = _native(schema).encode({})
    assert got is not None
    assert got == _fastavro(schema, {})


def test_schemas_the_plans_do_not_cover() -> None:
    node = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
    with pytest.raises(Unsupported):
        writer_plan(parse_schema(node))
    with pytest.raises(ValueError, match="share a Python type"):
        _native(parse_schema(["null", "int", "long"]))
    encoder = AvroEncoder(7, parse_schema(["null", "int", "long"]))  # fastavro's, every record
    assert encoder._native is None
    assert encoder.encode(5) == _fastavro(parse_schema(["null", "int", "long"]), 5)


def test_the_encoder_is_native_by_default_and_fastavro_when_told() -> None:
    schema = _domain_schema()
    event = _event(random.Random(1))
    native, plain = AvroEncoder(7, schema), AvroEncoder(7, schema, native=False)
    assert native._native is not None
    assert plain._native is None
    assert native.encode(event) == plain.encode(event) == _fastavro(schema, event)
