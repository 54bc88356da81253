"""The fault suite's poison makers produce exactly the malformed shapes B1/B2 name."""

from __future__ import annotations

import pytest

from streams.codecs import AvroDecoder
from streams.codecs.wire import HEADER_SIZE, frame, schema_id_of
from streams.errors import AvroBodyError, UnknownSchemaError, WireFormatError
from streams.registry.schema import SchemaSource
from tests.faults.crafting import plain_json, truncated, unknown_schema_id, wrong_magic

SCHEMA = '{"type": "record", "name": "R", "fields": [{"name": "s", "type": "string"}]}'


class OneSchema:
    def schema_by_id(self, schema_id: int) -> SchemaSource:
        from streams.errors import RegistryRequestError
        from streams.registry.errors import ErrorCode

        if schema_id != 7:
            raise RegistryRequestError(404, ErrorCode.SCHEMA_NOT_FOUND, "not found")
        return SchemaSource(SCHEMA)

    def referenced(self, ref: object) -> SchemaSource:
        raise AssertionError(ref)


GOOD = frame(7, b"\x0ahello")  # Avro string of length 5


def test_good_frame_decodes() -> None:
    assert AvroDecoder(OneSchema()).decode(GOOD) == {"s": "hello"}


def test_truncated_keeps_header_and_fails_as_body_error() -> None:
    bad = truncated(GOOD)
    assert bad[:HEADER_SIZE] == GOOD[:HEADER_SIZE]
    assert len(bad) < len(GOOD)
    with pytest.raises(AvroBodyError):
        AvroDecoder(OneSchema()).decode(bad)


def test_unknown_id_wrong_magic_and_json() -> None:
    decoder = AvroDecoder(OneSchema())
    bad_id = unknown_schema_id(GOOD)
    assert schema_id_of(bad_id) == 2_000_000_000
    with pytest.raises(UnknownSchemaError):
        decoder.decode(bad_id)
    with pytest.raises(WireFormatError):
        decoder.decode(wrong_magic(GOOD))
    with pytest.raises(WireFormatError):
        decoder.decode(plain_json({"id": 1}))
