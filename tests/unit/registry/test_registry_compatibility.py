"""Every level with a pair that passes and a pair that fails, straight over the checker."""

from __future__ import annotations

import json
from typing import Any

import avro.schema
import pytest

from streams.registry.compatibility import CompatibilityLevel as L
from streams.registry.compatibility import check


def schema(*fields: dict[str, Any]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps({"type": "record", "name": "R", "fields": list(fields)}))


A = {"name": "a", "type": "int"}
B_OPT = {"name": "b", "type": ["null", "string"], "default": None}
B_REQ = {"name": "b", "type": "string"}
C_REQ = {"name": "c", "type": "string"}
A_LONG = {"name": "a", "type": "long"}

V1 = schema(A)
WITH_OPTIONAL = schema(A, B_OPT)
WITH_REQUIRED = schema(A, B_REQ)
PROMOTED = schema(A_LONG)  # int -> long: readable by the new schema only


@pytest.mark.parametrize(
    ("level", "history", "new", "ok"),
    [
        (L.NONE, [V1], schema(C_REQ), True),
        (L.BACKWARD, [V1], WITH_OPTIONAL, True),
        (L.BACKWARD, [V1], WITH_REQUIRED, False),
        (L.BACKWARD, [V1], PROMOTED, True),
        (L.FORWARD, [V1], WITH_REQUIRED, True),
        (L.FORWARD, [V1], PROMOTED, False),
        (L.FULL, [V1], WITH_OPTIONAL, True),
        (L.FULL, [V1], PROMOTED, False),
        (L.FULL, [V1], WITH_REQUIRED, False),
        # Transitive: the new schema is fine against the latest but not against version 1.
        (L.BACKWARD_TRANSITIVE, [V1, WITH_OPTIONAL], schema(B_OPT), True),
        (L.BACKWARD_TRANSITIVE, [schema(C_REQ), V1], WITH_OPTIONAL, False),
        (L.BACKWARD, [schema(C_REQ), V1], WITH_OPTIONAL, True),
        (L.FORWARD_TRANSITIVE, [V1, WITH_REQUIRED], WITH_REQUIRED, True),
        (L.FORWARD_TRANSITIVE, [WITH_REQUIRED, V1], V1, False),
        (L.FORWARD, [WITH_REQUIRED, V1], V1, True),
        (L.FULL_TRANSITIVE, [V1, WITH_OPTIONAL], WITH_OPTIONAL, True),
        (L.FULL_TRANSITIVE, [schema(A, C_REQ), V1], WITH_OPTIONAL, False),
        (L.FULL, [schema(A, C_REQ), V1], WITH_OPTIONAL, True),
    ],
)
def test_levels(level: L, history: list[avro.schema.Schema], new: avro.schema.Schema, ok: bool) -> None:
    reasons = check(level, new, list(enumerate(history, start=1)))
    assert (not reasons) is ok, reasons


def test_reasons_name_the_field_and_the_rule() -> None:
    (reason,) = check(L.BACKWARD, WITH_REQUIRED, [(1, V1)])
    assert "version 1" in reason
    assert "reader_field_missing_default_value" in reason
    assert "b" in reason


def test_nothing_registered_is_always_compatible() -> None:
    assert check(L.FULL_TRANSITIVE, V1, []) == []
