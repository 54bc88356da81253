"""The compiled Avro writers write exactly fastavro's bytes, and leave to fastavro what they do not take."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema

from streams.codecs import AvroEncoder
from streams.codecs.avro_compiled import compile_writer

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
LONGS = [0, 1, -1, 63, 64, -64, -65, 127, 128, 2**31 - 1, -(2**31), 2**53 + 1, 2**63 - 1, -(2**63)]
INTS = [0, 1, -1, 63, 64, -65, 2**31 - 1, -(2**31)]
TEXTS = ["", "a", "Zoë 🦊 Øster", "x" * 200, "\u0000nul", "ü" * 70]


# What the contracts do not use yet but the compiled writers take: booleans, ints, inline and
# nullable enums, null as a union's second branch, defaults other than null, nullable logical types.
EVERYTHING = {
    "type": "record",
    "name": "Everything",
    "namespace": "t",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "int", "default": 5},
        {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "maybe_color", "type": ["null", "Color"], "default": None},
        {"name": "text_or_null", "type": ["string", "null"], "default": "dflt"},
        {"name": "maybe_flag", "type": ["null", "boolean"]},
        {"name": "maybe_int", "type": ["null", "int"], "default": None},
        {"name": "at", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}]},
        {
            "name": "id",
            "type": {"type": "string", "logicalType": "uuid"},
            "default": "00000000-0000-0000-0000-000000000000",
        },
        {
            "name": "inner",
            "type": {"type": "record", "name": "Inner", "fields": [{"name": "n", "type": "long"}]},
        },
        {"name": "again", "type": "Inner"},
        {"name": "nothing", "type": "null"},
    ],
}


def contracts() -> list[tuple[str, Any]]:
    """Every domain-event contract in schemas/, parsed as the worker parses it (references first)."""
    named: dict[str, Any] = {}
    parse_schema(json.loads((SCHEMAS / "common" / "SourcePosition.avsc").read_text()), named_schemas=named)
    return [
        (p.stem, parse_schema(json.loads(p.read_text()), named_schemas=dict(named)))
        for p in sorted(SCHEMAS.glob("*/*.avsc"))
        if p.parent.name != "common"
    ] + [("Everything", parse_schema(EVERYTHING))]


def sample(schema: Any, named: dict[str, Any], rng: random.Random) -> Any:
    """A random valid value of ``schema``; optional fields are sometimes left out of records."""
    if isinstance(schema, list):
        return sample(rng.choice(schema), named, rng)
    if isinstance(schema, str) and schema in named:
        return sample(named[schema], named, rng)
    kind = schema.get("type") if isinstance(schema, dict) else schema
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "timestamp-micros":
        # 1963..2090 in UTC (the events' own), other offsets, naive (local) time, or a number.
        at = datetime(2026, 11, 30, tzinfo=UTC) + timedelta(
            microseconds=rng.randrange(-(4 * 10**15), 2 * 10**15)
        )
        return rng.choice(
            [at, at, at, at.astimezone(timezone(timedelta(hours=-7))), at.replace(tzinfo=None), 42]
        )
    if logical == "uuid":
        u = uuid.UUID(int=rng.getrandbits(128))
        return str(u) if rng.random() < 0.7 else u
    if kind == "record":
        out = {}
        for f in schema["fields"]:
            if "default" in f and rng.random() < 0.2:
                continue  # written as its default
            out[f["name"]] = sample(f["type"], named, rng)
        return out
    if kind == "enum":
        return rng.choice(schema["symbols"])
    if kind == "long":
        return rng.choice(LONGS) if rng.random() < 0.5 else rng.randrange(-(2**63), 2**63)
    if kind == "int":
        return rng.choice(INTS)
    if kind == "string":
        return rng.choice(TEXTS)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    raise AssertionError(f"no sample for {schema!r}")


@pytest.mark.parametrize(("name", "schema"), contracts())
def test_every_contract_compiles_and_writes_fastavros_bytes(name: str, schema: Any) -> None:
    encoder = AvroEncoder(7, schema)
    assert encoder._compiled is not None, f"{name} fell back to fastavro entirely"
    rng = random.Random(name)
    for _ in range(400):
        record = sample(schema, schema["__named_schemas"], rng)
        out = bytearray(encoder._header)
        encoder._compiled(out, record)  # valid values of the exact types: no fallback to fastavro
        assert bytes(out) == encoder.encode(record) == encoder.encode_with_fastavro(record), record


class Kind(StrEnum):
    POSTGRESQL = "POSTGRESQL"


def registered(**changes: Any) -> dict[str, Any]:
    base = {
        "id": "6f1f6c1e-5b1a-4c7e-9a43-0c2b1f6de001",
        "type": "dev.changefeed.customers.CustomerRegistered",
        "source": "customers-postgresql/public.customers",
        "time": datetime(2026, 11, 30, 6, 0, 1, 123000, tzinfo=UTC),
        "subject": "7",
        "version": 123456789012,
        "position": {"system": "POSTGRESQL", "commit_lsn": 1, "lsn": 2, "tx_id": 3},
        "data": {"customer_id": 7, "email": "a@x.test", "full_name": "Ada L", "country": None},
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    "odd",
    [
        {"version": True},  # a bool where a long goes
        {"subject": Kind.POSTGRESQL},  # a str subclass
        {"position": {"system": Kind.POSTGRESQL}},  # an enum symbol as a str subclass
        {"data": {"customer_id": 7, "email": "a@x.test", "full_name": "A", "country": ("string", "CH")}},
    ],
)
def test_values_the_compiled_writers_refuse_are_written_by_fastavro(odd: dict[str, Any]) -> None:
    encoder = AvroEncoder(7, dict(contracts())["CustomerRegistered"])
    record = registered(**odd)
    out = bytearray()
    with pytest.raises(Exception):  # noqa: B017  # the compiled writer refuses, whatever way
        encoder._compiled(out, record)  # type: ignore[misc]
    assert encoder.encode(record) == encoder.encode_with_fastavro(record)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"version": 2**63}, OverflowError),
        ({"version": "7"}, TypeError),
        ({"position": {"system": "ORACLE"}}, ValueError),
        ({"data": {"customer_id": 7, "full_name": "A"}}, ValueError),  # no email, no default
    ],
)
def test_records_fastavro_refuses_raise_fastavros_error(bad: dict[str, Any], error: type[Exception]) -> None:
    encoder = AvroEncoder(7, dict(contracts())["CustomerRegistered"])
    with pytest.raises(error):
        encoder.encode_with_fastavro(registered(**bad))
    with pytest.raises(error):
        encoder.encode(registered(**bad))


def test_schemas_with_types_it_does_not_compile_stay_with_fastavro() -> None:
    for fields in (
        [{"name": "xs", "type": {"type": "array", "items": "long"}}],
        [{"name": "d", "type": "double"}],
        [{"name": "u", "type": ["null", "long", "string"]}],
        [{"name": "r", "type": ["null", {"type": "record", "name": "In", "fields": []}]}],
        [{"name": "self", "type": ["null", "Node"]}],
    ):
        schema = parse_schema({"type": "record", "name": "Node", "fields": fields})
        assert compile_writer(schema) is None, fields
        record = {f["name"]: None for f in fields} | ({"xs": [1, 2]} if fields[0]["name"] == "xs" else {})
        if fields[0]["name"] == "d":
            record = {"d": 1.5}
        encoder = AvroEncoder(7, schema)
        assert encoder.encode(record) == encoder.encode_with_fastavro(record)
