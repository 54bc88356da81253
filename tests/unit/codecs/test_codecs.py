"""Wire framing errors, round trips, writer→reader resolution and the per-id cache."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streams.codecs import HEADER_SIZE, AvroDecoder, AvroEncoder, frame, schema_id_of
from streams.errors import (
    AvroBodyError,
    MessageOrigin,
    RegistryRequestError,
    RegistryUnavailableError,
    UnknownSchemaError,
    WireFormatError,
)
from streams.registry.schema import Reference, SchemaSource

V1 = {
    "type": "record",
    "name": "User",
    "namespace": "t",
    "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
}
V2 = {**V1, "fields": [*V1["fields"], {"name": "email", "type": ["null", "string"], "default": None}]}
ORIGIN = MessageOrigin("domain.customers", 2, 41)


class FakeRegistry:
    def __init__(
        self, schemas: dict[int, SchemaSource], refs: dict[Reference, SchemaSource] | None = None
    ) -> None:
        self.schemas = schemas
        self.refs = refs or {}
        self.calls = 0
        self.down = False

    def schema_by_id(self, schema_id: int) -> SchemaSource:
        self.calls += 1
        if self.down:
            raise RegistryUnavailableError("down")
        if schema_id not in self.schemas:
            raise RegistryRequestError(404, 40403, "Schema not found")
        return self.schemas[schema_id]

    def referenced(self, ref: Reference) -> SchemaSource:
        return self.refs[ref]


def registry() -> FakeRegistry:
    return FakeRegistry({1: SchemaSource(json.dumps(V1)), 2: SchemaSource(json.dumps(V2))})


def encode(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    return AvroEncoder.for_source(schema_id, SchemaSource(json.dumps(schema)), registry()).encode(record)


def test_frame_layout() -> None:
    data = frame(258, b"body")
    assert data[:HEADER_SIZE] == b"\x00\x00\x00\x01\x02"
    assert schema_id_of(data) == 258


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00", b"\x01\x00\x00\x00\x01\x02", b'{"id": 1}'])
def test_not_confluent_framed(data: bytes) -> None:
    with pytest.raises(WireFormatError) as caught:
        AvroDecoder(registry()).decode(data, ORIGIN)
    assert caught.value.origin == ORIGIN
    assert "domain.customers[2]@41" in str(caught.value)


def test_round_trip_and_one_registry_call_per_id() -> None:
    lookup = registry()
    decoder = AvroDecoder(lookup)
    data = encode(1, V1, {"id": 7, "name": "Ada"})
    assert [decoder.decode(data) for _ in range(3)] == [{"id": 7, "name": "Ada"}] * 3
    assert lookup.calls == 1


def test_v1_bytes_read_with_v2_reader() -> None:
    decoder = AvroDecoder(registry(), reader_schema=V2)
    assert decoder.decode(encode(1, V1, {"id": 7, "name": "Ada"})) == {"id": 7, "name": "Ada", "email": None}
    v2 = encode(2, V2, {"id": 8, "name": "Bo", "email": "b@x"})
    assert decoder.decode(v2) == {"id": 8, "name": "Bo", "email": "b@x"}


def test_unknown_id_is_permanent_and_not_asked_again_at_once() -> None:
    lookup = registry()
    decoder = AvroDecoder(lookup)
    for _ in range(5):
        with pytest.raises(UnknownSchemaError) as caught:
            decoder.decode(frame(99, b"\x02"), ORIGIN)
        assert caught.value.origin == ORIGIN
    assert lookup.calls == 1


def test_registry_down_is_transient() -> None:
    lookup = registry()
    lookup.down = True
    with pytest.raises(RegistryUnavailableError):
        AvroDecoder(lookup).decode(encode(1, V1, {"id": 1, "name": "x"}))


@pytest.mark.parametrize("cut", range(1, 6))
def test_truncated_body(cut: int) -> None:
    data = encode(1, V1, {"id": 7, "name": "Ada"})
    with pytest.raises(AvroBodyError) as caught:
        AvroDecoder(registry()).decode(data[:-cut], ORIGIN)
    assert caught.value.origin == ORIGIN


def test_trailing_bytes_and_bad_utf8() -> None:
    decoder = AvroDecoder(registry())
    with pytest.raises(AvroBodyError):
        decoder.decode(encode(1, V1, {"id": 7, "name": "Ada"}) + b"\x00")
    with pytest.raises(AvroBodyError):
        decoder.decode(frame(1, b"\x02\x02\xff"))


def test_reader_that_cannot_resolve_the_writer() -> None:
    reader = {**V1, "fields": [{"name": "required", "type": "string"}]}
    with pytest.raises(AvroBodyError):
        AvroDecoder(registry(), reader_schema=reader).decode(encode(1, V1, {"id": 1, "name": "x"}))


def test_references_are_resolved() -> None:
    position = {"type": "record", "name": "Pos", "namespace": "c", "fields": [{"name": "n", "type": "long"}]}
    event = {"type": "record", "name": "E", "namespace": "d", "fields": [{"name": "p", "type": "c.Pos"}]}
    ref = Reference("c.Pos", "c.Pos", 1)
    lookup = FakeRegistry(
        {5: SchemaSource(json.dumps(event), (ref,))}, {ref: SchemaSource(json.dumps(position))}
    )
    data = AvroEncoder.for_source(5, lookup.schemas[5], lookup).encode({"p": {"n": 3}})
    assert AvroDecoder(lookup).decode(data) == {"p": {"n": 3}}
