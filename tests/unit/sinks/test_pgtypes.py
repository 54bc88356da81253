"""``pg_type_for`` on the Avro field types Debezium really registered on the local stack.

``debezium_field_types.json`` holds the row fields of two scratch tables' value schemas, copied
verbatim from the registry (one PostgreSQL table, one MariaDB table, one column per type).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.errors import ConfigError
from streams.sinks import Column, TableMapping, validate_mappings
from streams.sinks.pgtypes import pg_type_for

FIELDS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "debezium_field_types.json").read_text(encoding="utf-8")
)
EXPECTED = {
    "postgres": {
        "id": "integer",
        "c_smallint": "smallint",
        "c_integer": "integer",
        "c_bigint": "bigint",
        "c_boolean": "boolean",
        "c_text": "text",
        "c_varchar": "text",
        "c_bytea": "bytea",
        "c_real": "real",
        "c_double": "double precision",
        "c_numeric": "numeric",
        "c_numeric_20_6": "numeric(20,6)",
        "c_numeric_30_10": "numeric(30,10)",
        "c_date": "date",
        "c_timestamp3": "timestamp",
        "c_timestamp": "timestamp",
        "c_timestamptz": "timestamptz",
        "c_time3": "time",
        "c_time": "time",
        "c_timetz": "timetz",
        "c_interval": "interval",
        "c_json": "jsonb",
        "c_jsonb": "jsonb",
        "c_uuid": "uuid",
        "c_xml": "text",
        "c_bit3": "bytea",
        "c_bit1": "boolean",
        "c_text_arr": "text[]",
        "c_int_arr": "integer[]",
        "c_bigint_arr": "bigint[]",
        "c_numeric_arr": "numeric[]",  # items are a named reference to VariableScaleDecimal
        "c_numeric_10_2_arr": "numeric(10,2)[]",
        "c_uuid_arr": "uuid[]",
        "c_boolean_arr": "boolean[]",
        "c_date_arr": "date[]",
        "c_timestamptz_arr": "timestamptz[]",
        "c_jsonb_arr": "jsonb[]",
        "c_smallint_arr": "smallint[]",
    },
    "mariadb": {
        "id": "integer",
        "c_tinyint1": "smallint",
        "c_smallint": "smallint",
        "c_int": "integer",
        "c_bigint": "bigint",
        "c_float": "real",
        "c_double": "double precision",
        "c_decimal_30_10": "numeric(30,10)",
        "c_datetime6": "timestamp",
        "c_datetime": "timestamp",
        "c_timestamp": "timestamptz",
        "c_date": "date",
        "c_time": "time",
        "c_year": "integer",
        "c_json": "text",  # Debezium's MariaDB connector sends JSON as a plain string
        "c_blob": "bytea",
        "c_text": "text",
        "c_varchar": "text",
        "c_enum": "text",
        "c_set": "text",
        "c_bit3": "bytea",
        "c_binary16": "bytea",
    },
}


@pytest.mark.parametrize("source", sorted(EXPECTED))
def test_every_registered_field_type_maps_to_its_column_type(source: str) -> None:
    assert set(FIELDS[source]) == set(EXPECTED[source])
    got = {name: pg_type_for(t) for name, t in FIELDS[source].items()}
    assert got == EXPECTED[source]


@pytest.mark.parametrize("source", sorted(EXPECTED))
def test_derived_types_pass_the_mapping_allow_list(source: str) -> None:
    cols = [Column(name, type=pg_type_for(t)) for name, t in FIELDS[source].items()]
    mapping = TableMapping(f"{source}.t", "t", cols, key=["id"])
    assert validate_mappings([mapping]) == {f"{source}.t": mapping}


def test_named_reference_and_connect_parameters() -> None:
    assert pg_type_for("io.debezium.data.VariableScaleDecimal") == "numeric"
    assert pg_type_for({"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}) == (
        "numeric(12,2)"
    )
    assert pg_type_for({"type": "int", "connect.type": "int8"}) == "smallint"


@pytest.mark.parametrize(
    "bad",
    [
        ["null", "string", "long"],
        {"type": "array", "items": {"type": "array", "items": "int"}},
        {"type": "record", "name": "Point", "connect.name": "io.debezium.data.geometry.Point", "fields": []},
        "io.example.Unknown",
        42,
    ],
)
def test_types_without_a_column_type_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"no PostgreSQL column type|no single|arrays of arrays|not an Avro"):
        pg_type_for(bad)


def test_an_array_key_is_refused_by_the_allow_list() -> None:
    mapping = TableMapping(
        "public.t", "t", [Column("id", type=pg_type_for(FIELDS["postgres"]["c_int_arr"]))], ["id"]
    )
    with pytest.raises(ConfigError, match="are arrays"):
        validate_mappings([mapping])
