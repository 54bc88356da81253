"""Confluent wire framing and Avro codecs."""

from streams.codecs.avro import AvroDecoder, AvroEncoder
from streams.codecs.schemas import SchemaLookup
from streams.codecs.wire import HEADER_SIZE, MAGIC_BYTE, SCHEMA_ID_SIZE, frame, schema_id_of

__all__ = [
    "HEADER_SIZE",
    "MAGIC_BYTE",
    "SCHEMA_ID_SIZE",
    "AvroDecoder",
    "AvroEncoder",
    "SchemaLookup",
    "frame",
    "schema_id_of",
]
