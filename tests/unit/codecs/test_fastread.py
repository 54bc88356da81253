"""The compiled and the native Avro readers return exactly fastavro's values, and fail wherever
fastavro fails (the native module is built by `make install`: these tests require it)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from streams.codecs import AvroDecoder
from streams.codecs.avro import native_reader
from streams.codecs.fastread import compile_reader, read_long
from streams.codecs.wire import frame
from streams.errors import AvroBodyError
from streams.registry.schema import SchemaSource

VALUE = {
    "type": "record",
    "name": "Value",
    "namespace": "t.public.customers",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "email", "type": "string"},
        {"name": "phone", "type": ["null", "string"], "default": None},
        {"name": "n", "type": "int"},
        {"name": "ok", "type": "boolean"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "raw", "type": "bytes"},
        {
            "name": "credit",
            "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}],
        },
        {"name": "birth", "type": ["null", {"type": "int", "connect.name": "io.debezium.time.Date"}]},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "tier", "type": {"type": "enum", "name": "Tier", "symbols": ["A", "B", "C"]}},
        {"name": "md5", "type": {"type": "fixed", "name": "Md5", "size": 4}},
        {"name": "tags", "type": {"type": "array", "items": ["null", "string"]}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "again", "type": ["null", "Tier", "Md5", "long"]},
        {"name": "last", "type": ["string", "null"]},
    ],
}
ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "namespace": "t.public.customers",
    "fields": [
        {"name": "before", "type": ["null", VALUE], "default": None},
        {"name": "after", "type": ["null", "Value"], "default": None},
        {"name": "op", "type": "string"},
        {"name": "ts_us", "type": ["null", "long"], "default": None},
    ],
}


def _row(rng: random.Random) -> dict[str, Any]:
    big = rng.choice([0, 1, -1, 63, 64, -65, 2**31, 2**63 - 1, -(2**63), rng.randrange(-(2**63), 2**63)])
    return {
        "id": big,
        "email": rng.choice(["", "a@b", "ünï©ødé ✓", "x" * rng.randrange(0, 300)]),
        "phone": rng.choice([None, "", "+1 555"]),
        "n": rng.randrange(-(2**31), 2**31),
        "ok": rng.random() < 0.5,
        "f": rng.choice([0.0, 1.5, -2.25, float("inf")]),
        "d": rng.choice([0.0, 1e-300, -3.141592653589793, float("-inf")]),
        "raw": rng.randbytes(rng.randrange(0, 200)),
        "credit": rng.choice([None, Decimal("0.00"), Decimal("-1234567890.12"), Decimal("99.99")]),
        "birth": rng.choice([None, 0, -719162, 2932896]),
        "day": date(2026, 11, 30),
        "at": datetime(2026, 11, 30, 6, 30, 1, rng.randrange(0, 10**6), tzinfo=UTC),
        "uid": str(uuid.UUID(int=rng.getrandbits(128))),
        "tier": rng.choice("ABC"),
        "md5": rng.randbytes(4),
        "tags": [rng.choice([None, "t", ""]) for _ in range(rng.randrange(0, 5))],
        "attrs": {f"k{i}": rng.randrange(-1000, 10**12) for i in range(rng.randrange(0, 4))},
        "again": rng.choice([None, "B", b"abcd", -5]),
        "last": rng.choice([None, "z"]),
    }


def _records(n: int) -> list[dict[str, Any]]:
    rng = random.Random(13)
    out = []
    for _ in range(n):
        op = rng.choice("cud")
        out.append(
            {
                "before": None if op == "c" else _row(rng),
                "after": None if op == "d" else _row(rng),
                "op": op,
                "ts_us": rng.choice([None, 1_796_019_365_181_814]),
            }
        )
    return out


def _fastavro(schema: Any, body: bytes) -> Any:
    buffer = BytesIO(body)
    value = schemaless_reader(buffer, schema, None)
    if buffer.tell() != len(body):
        msg = "left over"
        raise ValueError(msg)
    return value


_READERS: dict[tuple[str, int], Any] = {}
BUILDERS = {"compiled": compile_reader, "native": native_reader}


@pytest.fixture(params=sorted(BUILDERS))
def kind(request: pytest.FixtureRequest) -> str:
    """Each test runs once per reader: the Python one compiled per schema, and the native one."""
    return str(request.param)


def _compiled(kind: str, schema: Any, body: bytes) -> Any:
    key = (kind, id(schema))
    read = _READERS.get(key) or _READERS.setdefault(key, BUILDERS[kind](schema))
    assert read is not None
    value, end = read(body, 0)
    if end != len(body):
        msg = "left over"
        raise ValueError(msg)
    return value


def _encode(schema: Any, record: Any) -> bytes:
    buffer = BytesIO()
    schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


def test_same_values_and_types_as_fastavro(kind: str) -> None:
    schema = parse_schema(ENVELOPE)
    for record in _records(300):
        body = _encode(schema, record)
        expected = _fastavro(schema, body)
        got = _compiled(kind, schema, body)
        # repr: the same types (Decimal, UUID, date, aware datetime, bytes) and field order
        assert repr(got) == repr(expected)


def test_primitive_and_blocked_schemas(kind: str) -> None:
    rng = random.Random(5)
    cases: list[tuple[Any, Any]] = [
        ("string", "outbox JSON ✓"),
        ("long", -(2**63)),
        ("null", None),
        ({"type": "array", "items": "long"}, list(range(-70, 70))),
        ({"type": "map", "values": ["null", "string"]}, {"a": None, "b": "x"}),
    ]
    for schema, value in cases:
        parsed = parse_schema(schema)
        body = _encode(parsed, value)
        assert repr(_compiled(kind, parsed, body)) == repr(_fastavro(parsed, body))
    # Blocks with negative counts (a block byte size follows), as other writers may send them.
    body = bytes([3, 4, 2, 4, 0])  # count -2, size 2, items 1 and 2, end
    parsed = parse_schema({"type": "array", "items": "long"})
    assert _compiled(kind, parsed, body) == _fastavro(parsed, body) == [1, 2]
    assert rng  # deterministic


def test_every_truncation_fails_like_fastavro(kind: str) -> None:
    schema = parse_schema(ENVELOPE)
    for record in _records(20):
        body = _encode(schema, record)
        for cut in range(len(body)):
            with pytest.raises((EOFError, IndexError, ValueError)):
                _fastavro(schema, body[:cut])
            with pytest.raises((EOFError, IndexError, ValueError)):
                _compiled(kind, schema, body[:cut])


def test_corrupt_bytes_fail_or_decode_like_fastavro(kind: str) -> None:
    """Flipped bytes: where fastavro still decodes, the same value; where it fails, a failure."""
    schema = parse_schema(ENVELOPE)
    rng = random.Random(7)
    errors = (EOFError, IndexError, ValueError, KeyError, TypeError, OverflowError)
    for record in _records(60):
        body = bytearray(_encode(schema, record))
        for _ in range(20):
            bad = bytearray(body)
            bad[rng.randrange(len(bad))] = rng.randrange(256)
            try:
                expected: Any = repr(_fastavro(schema, bytes(bad)))
            except errors:
                expected = "error"
            try:
                got: Any = repr(_compiled(kind, schema, bytes(bad)))
            except errors:
                got = "error"
            assert got == expected, bytes(bad).hex()


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ("boolean", b"\x02"),  # any non-zero byte is true, as in fastavro
        ("boolean", b"\xff"),
        (["null", "long"], b"\x01\x02"),  # branch -1: fastavro indexes its list, so the last
        (["null", "long"], b"\x03\x02"),  # branch -2: the first
        (["null", "long"], b"\x04\x02"),  # branch 2: out of range
        ({"type": "enum", "name": "E", "symbols": ["a", "b"]}, b"\x01"),
        ({"type": "enum", "name": "E", "symbols": ["a", "b"]}, b"\x04"),
        ("string", b"\x04\xff\xfe"),  # not UTF-8
        ("bytes", b"\x03"),  # negative length
    ],
)
def test_odd_bytes_read_as_fastavro_reads_them(kind: str, schema: Any, body: bytes) -> None:
    parsed = parse_schema(schema)
    errors = (EOFError, IndexError, ValueError)
    try:
        expected: Any = repr(_fastavro(parsed, body))
    except errors:
        expected = "error"
    try:
        got: Any = repr(_compiled(kind, parsed, body))
    except errors:
        got = "error"
    assert got == expected


def test_varints_keep_64_bits_and_refuse_more_than_ten_bytes() -> None:
    for n in (0, -1, 1, 2**63 - 1, -(2**63), 300, -301):
        body = _encode(parse_schema("long"), n)
        assert read_long(body + b"\x00", 0) == (n, len(body)) or len(body) == 1
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        read_long(b"\xff" * 11, 0)
    with pytest.raises(IndexError):
        read_long(b"\xff\xff", 0)


def test_recursive_schema_is_left_to_fastavro() -> None:
    node = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"]}, {"name": "v", "type": "long"}],
    }
    assert compile_reader(parse_schema(node)) is None
    assert native_reader(parse_schema(node)) is None


class _Lookup:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.source = SchemaSource(json.dumps(schema))

    def schema_by_id(self, schema_id: int) -> SchemaSource:
        return self.source

    def referenced(self, ref: Any) -> SchemaSource:
        raise KeyError(ref)


def test_decoder_uses_it_and_types_its_errors() -> None:
    decoder = AvroDecoder(_Lookup(ENVELOPE))
    record = _records(1)[0]
    data = frame(7, _encode(parse_schema(ENVELOPE), record))
    assert decoder.decode(data) == decoder.decode(bytearray(data))  # bytearray: fastavro path
    assert type(decoder._compiled[7]).__name__ == "Reader"  # the native one, by default
    with pytest.raises(AvroBodyError, match="left over"):
        decoder.decode(data + b"\x00")
    with pytest.raises(AvroBodyError, match="does not decode"):
        decoder.decode(data[:-1])


def test_the_decoder_uses_fastavro_alone_when_told() -> None:
    """``[worker] avro_reader = "fastavro"``: no compiled reader, the same values."""
    schema = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]}
    data = b"\x00" + (7).to_bytes(4, "big") + b"\x54"
    compiled = AvroDecoder(_Lookup(schema), reader="compiled")
    plain = AvroDecoder(_Lookup(schema), reader="fastavro")
    assert compiled.decode(data) == plain.decode(data) == {"a": 42}
    assert compiled._compiled.get(7) is not None
    assert plain._compiled.get(7) is None
