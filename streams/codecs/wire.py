"""Confluent's wire format: one magic byte 0, a 4-byte big-endian schema id, then the Avro body."""

from __future__ import annotations

import struct

from streams.errors import MessageOrigin, WireFormatError

MAGIC_BYTE = 0
SCHEMA_ID_SIZE = 4
HEADER_SIZE = 1 + SCHEMA_ID_SIZE
HEADER = struct.Struct(">bI")


def frame(schema_id: int, body: bytes) -> bytes:
    return HEADER.pack(MAGIC_BYTE, schema_id) + body


def schema_id_of(data: bytes, origin: MessageOrigin | None = None) -> int:
    """The schema id in the header; ``WireFormatError`` if this is not Confluent-framed data."""
    if len(data) < HEADER_SIZE:
        msg = f"message of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte Confluent header"
        raise WireFormatError(msg, origin)
    if data[0] != MAGIC_BYTE:
        msg = f"magic byte is {data[0]:#04x}, expected {MAGIC_BYTE:#04x} (not Confluent-framed Avro)"
        raise WireFormatError(msg, origin)
    schema_id: int = HEADER.unpack_from(data)[1]
    return schema_id
