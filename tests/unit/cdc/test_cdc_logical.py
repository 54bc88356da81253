"""Debezium semantic types → Python values, with the schemas the shared stack really registers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from streams.cdc import parse_change_event
from streams.cdc.logical import convert_logical, row_logical_types
from streams.sinks import Column, TableMapping
from streams.sinks.batch import to_write

# Row fields of customers.public.customers-value (schema id 70 on the local stack), verbatim.
CUSTOMERS_ROW: dict[str, Any] = {
    "type": "record",
    "name": "Value",
    "namespace": "customers.public.customers",
    "fields": [
        {"name": "id", "type": "long"},
        {
            "name": "created_at",
            "type": {
                "type": "string",
                "connect.version": 1,
                "connect.name": "io.debezium.time.ZonedTimestamp",
            },
        },
        {
            "name": "birth_date",
            "type": ["null", {"type": "int", "connect.version": 1, "connect.name": "io.debezium.time.Date"}],
        },
        {
            "name": "credit_limit",
            "type": [
                "null",
                {
                    "type": "bytes",
                    "scale": 2,
                    "precision": 12,
                    "connect.name": "org.apache.kafka.connect.data.Decimal",
                    "logicalType": "decimal",
                },
            ],
        },
        {
            "name": "preferences",
            "type": [
                "null",
                {"type": "string", "connect.version": 1, "connect.name": "io.debezium.data.Json"},
            ],
        },
        {"name": "bio", "type": ["null", "string"]},
    ],
}
ENVELOPE = {
    "type": "record",
    "name": "Envelope",
    "fields": [
        {"name": "before", "type": ["null", CUSTOMERS_ROW], "default": None},
        {"name": "after", "type": ["null", "customers.public.customers.Value"], "default": None},
    ],
}


def test_row_types_come_from_connect_name() -> None:
    assert row_logical_types(ENVELOPE) == {
        "created_at": "io.debezium.time.ZonedTimestamp",
        "birth_date": "io.debezium.time.Date",
    }  # Decimal is fastavro's already, Json stays text, plain strings have no type
    assert row_logical_types("string") == {}


@pytest.mark.parametrize(
    ("logical", "raw", "expected"),
    [
        ("io.debezium.time.Date", -2812, date(1962, 4, 21)),
        ("io.debezium.time.Date", 0, date(1970, 1, 1)),
        (
            "io.debezium.time.ZonedTimestamp",
            "2026-11-27T10:38:16.143599Z",
            datetime(2026, 11, 27, 10, 38, 16, 143599, tzinfo=UTC),
        ),
        (
            "io.debezium.time.MicroTimestamp",
            1_000_001,
            datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC).replace(tzinfo=None),
        ),
        (
            "io.debezium.time.Timestamp",
            -1000,
            datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC).replace(tzinfo=None),
        ),
        (
            "io.debezium.time.NanoTimestamp",
            1_500,
            datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC).replace(tzinfo=None),
        ),
        ("io.debezium.time.MicroTime", 3_600_000_001, time(1, 0, 0, 1)),
        (
            "io.debezium.data.VariableScaleDecimal",
            {"scale": 3, "value": (-12345).to_bytes(2, "big", signed=True)},
            Decimal("-12.345"),
        ),
        ("io.debezium.data.Json", '{"a": 1}', '{"a": 1}'),
        (None, "x", "x"),
        ("io.debezium.time.Date", None, None),
        ("io.debezium.time.Date", "__debezium_unavailable_value", "__debezium_unavailable_value"),
    ],
)
def test_convert_logical(logical: str | None, raw: Any, expected: Any) -> None:
    assert convert_logical(logical, raw) == expected


def test_sink_write_converts_by_semantic_type_and_column_convert_wins() -> None:
    mapping = TableMapping(
        "public.customers",
        "cd",
        [
            Column("id", "customer_id", "bigint"),
            Column("birth_date", type="date"),
            Column("created_at", type="timestamptz"),
            Column("credit_limit", type="numeric(12,2)"),
            Column("bio", convert=str.upper),
        ],
        ["customer_id"],
    )
    value = {
        "op": "u",
        "before": None,
        "after": {
            "id": 7,
            "birth_date": 1,
            "created_at": "2026-01-02T03:04:05.000006Z",
            "credit_limit": Decimal("12.50"),
            "bio": "__debezium_unavailable_value",
        },
        "source": {
            "connector": "postgresql",
            "schema": "public",
            "table": "customers",
            "sequence": '["10", "20"]',
            "txId": 3,
        },
        "ts_ms": 1,
    }
    event = parse_change_event(
        value, logical_types=row_logical_types(ENVELOPE) | {"bio": "io.debezium.time.Date"}
    )
    w = to_write(mapping, event)
    assert w.key == (7,)
    assert w.values[:3] == (date(1970, 1, 2), datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), Decimal("12.50"))
    assert w.keep == frozenset({"bio"})  # the TOAST placeholder is never converted, only kept
