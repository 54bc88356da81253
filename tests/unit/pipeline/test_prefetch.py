"""Handler.prefetch: keys and values decoded once, and only the rows fill will read asked for."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.codecs import AvroDecoder, AvroEncoder
from streams.pipeline.handle import Handler
from streams.project.handlers import HandlerRegistry
from streams.registry.schema import Reference, SchemaSource
from streams.sinks.previous import PreviousRows, may_need_previous

ROW = {"type": "record", "name": "Row", "fields": [{"name": "id", "type": "long"}]}
KEY = {"type": "record", "name": "Key", "namespace": "k", "fields": [{"name": "id", "type": "long"}]}
ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "namespace": "v",
    "fields": [
        {"name": "op", "type": "string"},
        {"name": "before", "type": ["null", ROW], "default": None},
        {"name": "after", "type": ["null", "Row"], "default": None},
    ],
}
SCHEMAS = {1: SchemaSource(json.dumps(KEY)), 2: SchemaSource(json.dumps(ENVELOPE))}
TOPIC = "cf.public.customers"


class Schemas:
    def schema_by_id(self, schema_id: int) -> SchemaSource:
        return SCHEMAS[schema_id]

    def referenced(self, ref: Reference) -> SchemaSource:
        raise KeyError(ref)


@dataclass
class Rec:
    offset: int
    key: bytes | None
    value: bytes | None
    topic: str = TOPIC
    partition: int = 0
    timestamp: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Asked(PreviousRows):
    """Records what prefetch asks the sink for instead of asking it."""

    def __init__(self) -> None:
        super().__init__(None, {"public.customers": frozenset({"email"})})  # type: ignore[arg-type]
        self.asked: list[Mapping[str, list[Mapping[str, Any]]]] = []

    async def prefetch(self, keys: Mapping[str, list[Mapping[str, Any]]]) -> None:
        self.asked.append(keys)


def record(offset: int, op: str | None, before: bool = False) -> Rec:
    key = AvroEncoder.for_source(1, SCHEMAS[1], Schemas()).encode({"id": offset})
    if op is None:
        return Rec(offset, key, None)
    row = {"id": offset}
    value = {"op": op, "before": row if before or op == "d" else None, "after": None if op == "d" else row}
    return Rec(offset, key, AvroEncoder.for_source(2, SCHEMAS[2], Schemas()).encode(value))


async def test_prefetch_asks_only_for_updates_without_a_before_image_and_decodes_once() -> None:
    asked = Asked()
    handler = Handler(AvroDecoder(Schemas()), HandlerRegistry(), object(), None, asked)  # type: ignore[arg-type]
    records = [record(1, "c"), record(2, "u"), record(3, "u", before=True), record(4, "d"), record(5, None)]
    await handler.prefetch(records)
    assert asked.asked == [{"public.customers": [{"id": 2}]}]
    # handle() finds every key and value decoded already.
    assert set(handler.values) == set(handler._keys) == {(TOPIC, 0, r.offset) for r in records}
    assert handler.values[(TOPIC, 0, 2)]["op"] == "u"
    assert handler.values[(TOPIC, 0, 5)] is None

    # A poll that failed before handling leaves nothing behind for the next one.
    await handler.prefetch([record(6, "u")])
    assert set(handler.values) == {(TOPIC, 0, 6)}
    assert asked.asked[-1] == {"public.customers": [{"id": 6}]}


def test_may_need_previous_is_a_superset_of_what_fill_rebuilds() -> None:
    row = {"id": 1}
    assert may_need_previous({"op": "u", "before": None, "after": row})
    assert may_need_previous({"payload": {"op": "u"}, "schema": {}})  # a shape it does not know
    assert may_need_previous("not a record")
    assert not may_need_previous({"op": "u", "before": row, "after": row})
    assert not may_need_previous({"op": "c", "before": None, "after": row})
    assert not may_need_previous({"op": "r", "before": None, "after": row})
    assert not may_need_previous({"op": "d", "before": row, "after": None})
    assert not may_need_previous(None)  # a tombstone
