"""Avro on the Confluent wire format, with fastavro.

Decoding resolves each writer schema (by the id in the header) to one reader schema, so an agent
sees one shape while producers evolve. The hot path is: header check, one dict lookup, the reader
for the writer schema: the native one (``changefeed_avro``, Rust, built from
``streams/codecs/native``; ``[worker] avro_reader = "native"``) or the one compiled to Python
(``streams.codecs.fastread``), both returning exactly fastavro's values; fastavro itself when a
reader schema is given or the plan (``streams.codecs.plan``) does not cover the schema.

Encoding: the native writer where it covers the record (exact Python types, an unambiguous union
branch), else fastavro's writer; the bytes are the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from types import ModuleType
from typing import Any, Literal, cast

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from streams.cdc.logical import row_fields, row_logical_types
from streams.codecs.fastread import Reader, compile_reader
from streams.codecs.plan import Unsupported, reader_plan, writer_plan
from streams.codecs.schemas import SchemaLookup, WriterSchemas, parse_for_fastavro
from streams.codecs.wire import HEADER, HEADER_SIZE, MAGIC_BYTE, schema_id_of
from streams.errors import AvroBodyError, MessageOrigin
from streams.registry.schema import SchemaSource

_native: ModuleType | None
try:  # the optional native codec (see streams/codecs/native/README.md)
    import changefeed_avro as _native
except ImportError:  # pragma: no cover - depends on the install
    _native = None

NATIVE = _native is not None
ReaderKind = Literal["native", "compiled", "fastavro"]


def native_reader(writer: Any) -> Reader | None:
    """The native reader for a parsed writer schema; None without the module or a plan for it."""
    if _native is None:
        return None
    try:
        return cast(Reader, _native.Reader(reader_plan(writer)))
    except Unsupported:
        return None


# Everything fastavro raises for bytes that do not match their writer schema (truncation is EOF).
_BODY_ERRORS = (EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError, SchemaResolutionError)


class AvroDecoder:
    def __init__(
        self,
        lookup: SchemaLookup,
        reader_schema: dict[str, Any] | str | None = None,
        reader: ReaderKind = "native",
    ) -> None:
        """``reader`` (``[worker] avro_reader``): "native" falls back to "compiled" without the
        native module; "fastavro" is the library's reader for every record."""
        self._writers = WriterSchemas(lookup)
        self._compile = reader != "fastavro" and reader_schema is None
        self._native = reader == "native" and NATIVE
        self._reader = parse_schema(reader_schema) if reader_schema is not None else None
        self._plans: dict[int, tuple[Any, Any]] = {}
        # Per writer schema id, its compiled reader (``streams.codecs.fastread``) when there is no
        # reader schema to resolve to; None where the compiler does not cover the schema.
        self._compiled: dict[int, Reader | None] = {}
        self._row_types: dict[int, Mapping[str, str]] = {}
        self._row_fields: dict[int, Mapping[str, Any]] = {}

    def decode(self, data: bytes, origin: MessageOrigin | None = None) -> Any:
        """The record in ``data``; typed ``DecodeError`` subclasses say what is wrong with it."""
        if len(data) < HEADER_SIZE or data[0] != MAGIC_BYTE:
            schema_id_of(data, origin)  # raises the precise WireFormatError
        schema_id = HEADER.unpack_from(data)[1]
        read = self._compiled.get(schema_id)
        if read is None or type(data) is not bytes:  # a slice of bytes is what fastavro returns
            return self._fastavro(data, schema_id, origin)
        try:
            value, end = read(data, HEADER_SIZE)
        except _BODY_ERRORS as exc:
            msg = f"Avro body does not decode with schema id {schema_id}: {exc!r}"
            raise AvroBodyError(msg, origin) from exc
        if end != len(data):
            msg = f"{len(data) - end} bytes left over after the Avro body"
            raise AvroBodyError(msg, origin)
        return value

    def _fastavro(self, data: bytes, schema_id: int, origin: MessageOrigin | None) -> Any:
        plan = self._plans.get(schema_id) or self._plan(schema_id, origin)
        if self._compiled.get(schema_id) is not None and type(data) is bytes:
            return self.decode(data, origin)  # first record of a schema the compiler covers
        buffer = BytesIO(data)
        buffer.seek(HEADER_SIZE)
        try:
            value = schemaless_reader(buffer, plan[0], plan[1])
        except _BODY_ERRORS as exc:
            msg = f"Avro body does not decode with schema id {schema_id}: {exc!r}"
            raise AvroBodyError(msg, origin) from exc
        if buffer.tell() != len(data):
            msg = f"{len(data) - buffer.tell()} bytes left over after the Avro body"
            raise AvroBodyError(msg, origin)
        return value

    def row_types(self, data: bytes | None) -> Mapping[str, str]:
        """Semantic types of the row fields of the Debezium envelope in ``data`` (cached per id).

        Call after ``decode`` succeeded on ``data`` (the writer schema is then known).
        """
        if data is None or len(data) < HEADER_SIZE:
            return {}
        schema_id = HEADER.unpack_from(data)[1]
        types = self._row_types.get(schema_id)
        if types is None:
            plan = self._plans.get(schema_id)
            types = self._row_types[schema_id] = row_logical_types(plan[0]) if plan else {}
        return types

    def row_fields(self, data: bytes | None) -> Mapping[str, Any] | None:
        """Row field → Avro type of the Debezium envelope in ``data``; one map object per writer
        schema for the decoder's lifetime (the sink keys its resolutions by it). After ``decode``."""
        if data is None or len(data) < HEADER_SIZE:
            return None
        schema_id = HEADER.unpack_from(data)[1]
        fields = self._row_fields.get(schema_id)
        if fields is None:
            plan = self._plans.get(schema_id)
            if plan is None:
                return None
            fields = self._row_fields[schema_id] = row_fields(plan[0])
        return fields

    def _plan(self, schema_id: int, origin: MessageOrigin | None) -> tuple[Any, Any]:
        writer = self._writers.get(schema_id, origin)
        plan = self._plans[schema_id] = (writer, self._reader)
        if self._compile:
            native = native_reader(writer) if self._native else None
            self._compiled[schema_id] = native or compile_reader(writer)
        return plan


class AvroEncoder:
    """Encodes records with one registered schema (id known up front: no registry call per record).

    The native writer (``native=True`` and the module installed) where it covers the record,
    else fastavro's writer: the same bytes, and fastavro's error for a value that does not fit.
    """

    def __init__(self, schema_id: int, schema: Any, native: bool = True) -> None:
        self.schema_id = schema_id
        self._schema = schema
        self._header = HEADER.pack(MAGIC_BYTE, schema_id)
        self._native: Any = None
        if native and _native is not None:
            try:
                self._native = _native.Writer(writer_plan(schema), self._header)
            except (Unsupported, ValueError):  # ValueError: a union the native writer refuses
                self._native = None

    @classmethod
    def for_source(
        cls, schema_id: int, source: SchemaSource, lookup: SchemaLookup, native: bool = True
    ) -> AvroEncoder:
        return cls(schema_id, parse_for_fastavro(source, lookup), native)

    def encode(self, record: Any) -> bytes:
        if self._native is not None:
            data: bytes | None = self._native.encode(record)
            if data is not None:
                return data
        buffer = BytesIO()
        buffer.write(self._header)
        schemaless_writer(buffer, self._schema, record)
        return buffer.getvalue()
