"""Canonical-form equality and parse errors."""

from __future__ import annotations

import json

import pytest

from streams.registry.errors import ErrorCode, RegistryError
from streams.registry.schema import Reference, SchemaSource, parse


def _no_refs(ref: Reference) -> SchemaSource:
    raise AssertionError(ref)


def canonical(text: str) -> str:
    return parse(SchemaSource(text), _no_refs).canonical


def test_whitespace_key_order_and_namespace_spelling_do_not_matter() -> None:
    a = '{"type":"record","name":"R","namespace":"n","fields":[{"name":"x","type":"string"}]}'
    b = """{ "fields": [ {"type": {"type": "string"}, "name": "x"} ],
             "name": "n.R", "type": "record" }"""
    assert canonical(a) == canonical(b)


def test_defaults_and_docs_do_matter() -> None:
    base = {"type": "record", "name": "R", "fields": [{"name": "x", "type": "int", "default": 1}]}
    changed = json.loads(json.dumps(base))
    changed["fields"][0]["default"] = 2
    assert canonical(json.dumps(base)) != canonical(json.dumps(changed))
    documented = {**base, "doc": "why"}
    assert canonical(json.dumps(base)) != canonical(json.dumps(documented))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"type": "record", "name": "R"}',
        '{"type": "nope"}',
        '{"type":"enum","name":"E","symbols":[1]}',
    ],
)
def test_invalid_schemas_are_42201(text: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse(SchemaSource(text), _no_refs)
    assert caught.value.code is ErrorCode.INVALID_SCHEMA


def test_only_avro_is_served() -> None:
    with pytest.raises(RegistryError) as caught:
        parse(SchemaSource('"string"'), _no_refs, "PROTOBUF")
    assert caught.value.code is ErrorCode.INVALID_SCHEMA


def test_references_define_named_types() -> None:
    position = '{"type":"record","name":"P","namespace":"c","fields":[{"name":"n","type":"long"}]}'
    event = '{"type":"record","name":"E","namespace":"d","fields":[{"name":"p","type":"c.P"}]}'
    ref = Reference("c.P", "c.P", 1)
    parsed = parse(SchemaSource(event, (ref,)), lambda r: SchemaSource(position))
    assert '"n"' in parsed.canonical  # the referenced type is part of the identity
    with pytest.raises(RegistryError):
        parse(SchemaSource(event), _no_refs)
