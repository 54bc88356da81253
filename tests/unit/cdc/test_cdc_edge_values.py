"""Edge values exactly as Debezium sent them on the local stack (decoded with fastavro), converted
by ``streams.cdc.logical`` into what the PostgreSQL sink column takes without loss."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from streams.cdc.logical import convert_logical, row_logical_types
from streams.cdc.pgtext import PgLiteral, array_literal, civil_from_days

FIELDS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "sinks" / "debezium_field_types.json").read_text(encoding="utf-8")
)
VSD = "io.debezium.data.VariableScaleDecimal"


def _vsd(text: str) -> dict[str, Any]:
    """Debezium's VariableScaleDecimal of ``text``: unscaled big-endian two's complement + scale."""
    d = Decimal(text)
    sign, digits, exponent = d.as_tuple()
    assert isinstance(exponent, int)
    unscaled = int("".join(map(str, digits))) * (-1 if sign else 1)
    return {
        "scale": -exponent,
        "value": unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True),
    }


@pytest.mark.parametrize(
    "text",
    [
        "1234567890123456789012345678901234567890.123456789",  # 49 digits
        "1E+40",
        "-0.000000000000000000000000000000000000001",
        "0.000001",
        "9999999999999999999999999999999999999999",
    ],
)
def test_unconstrained_numeric_keeps_every_digit(text: str) -> None:
    got = convert_logical(VSD, _vsd(text))
    assert got == Decimal(text)
    assert got.as_tuple() == Decimal(text).as_tuple()  # same digits and scale, not just equal


def test_numeric_captured_from_debezium_keeps_every_digit() -> None:
    # numeric '1234567890123456789012345678901234567890.123456789' as the connector sent it
    raw = {"scale": 9, "value": b"\x00\xd8?\xf0W]\xe5\x9f\xa9\xbb7\x0b\xa5\xe5\xad\x98(\xae9\x81\x15"}
    assert str(convert_logical(VSD, raw)) == "1234567890123456789012345678901234567890.123456789"


@pytest.mark.parametrize("field", ["c_numeric_30_10", "c_numeric_20_6"])
def test_declared_scale_decimals_decode_exactly_through_fastavro(field: str) -> None:
    schema = parse_schema(
        {"type": "record", "name": "R", "fields": [{"name": "x", "type": FIELDS["postgres"][field]}]}
    )
    precision = int(FIELDS["postgres"][field][1]["precision"])
    scale = int(FIELDS["postgres"][field][1]["scale"])
    value = Decimal("-" + "9" * (precision - scale) + "." + "9" * scale)
    buf = io.BytesIO()
    schemaless_writer(buf, schema, {"x": value})
    buf.seek(0)
    assert schemaless_reader(buf, schema)["x"].as_tuple() == value.as_tuple()


def test_time_24_00_is_kept() -> None:
    assert convert_logical("io.debezium.time.MicroTime", 86_400_000_000) == "24:00:00"
    assert convert_logical("io.debezium.time.Time", 86_400_000) == "24:00:00"
    assert convert_logical("io.debezium.time.MicroTime", 86_399_999_999) == time(23, 59, 59, 999999)
    assert convert_logical("io.debezium.time.ZonedTime", "24:00:00Z") == "24:00:00Z"


def test_mariadb_times_beyond_a_day_are_not_wrapped() -> None:
    # TIME '838:59:59' as the MariaDB connector sent it; an interval column takes the text.
    assert convert_logical("io.debezium.time.MicroTime", 3020399000000) == "838:59:59"
    assert convert_logical("io.debezium.time.MicroTime", -3_600_000_001) == "-01:00:00.000001"


# What the connector sent for infinity, -infinity, 44 BC and year 12345 (local stack, Debezium 2.x).
@pytest.mark.parametrize(
    ("logical", "raw", "expected"),
    [
        ("io.debezium.time.ZonedTimestamp", "infinity", "infinity"),
        ("io.debezium.time.ZonedTimestamp", "-infinity", "-infinity"),
        ("io.debezium.time.ZonedTimestamp", "-0043-03-15T12:00:00.000000Z", "0044-03-15 12:00:00.000000Z BC"),
        ("io.debezium.time.ZonedTimestamp", "+12345-06-07T08:09:10.123456Z", "12345-06-07 08:09:10.123456Z"),
        ("io.debezium.time.ZonedTimestamp", "0000-01-01T00:00:00Z", "0001-01-01 00:00:00Z BC"),
        ("io.debezium.time.MicroTimestamp", 9223372036825200000, "infinity"),
        ("io.debezium.time.MicroTimestamp", -9223372036832400000, "-infinity"),
        ("io.debezium.time.MicroTimestamp", -63517780800000000, "0044-03-15 12:00:00 BC"),
        ("io.debezium.time.MicroTimestamp", 327416976550123456, "12345-06-07 08:09:10.123456"),
        ("io.debezium.time.Timestamp", 9223372036825200000, "infinity"),
        ("io.debezium.time.Date", -622191234, "infinity"),
        ("io.debezium.time.Date", -625821272, "-infinity"),
        ("io.debezium.time.Date", -2147472692, "infinity"),  # streamed (pgoutput), not snapshot
        ("io.debezium.time.Date", -2147472691, "-infinity"),
        ("io.debezium.time.Date", -735160, "0044-03-15 BC"),  # streamed BC dates keep their era
        ("io.debezium.time.MicroTimestamp", -210863476800000000, "4713-01-01 12:00:00 BC"),
        ("io.debezium.time.Date", 3789548, "12345-06-07"),
    ],
)
def test_values_outside_pythons_range_become_postgres_text(logical: str, raw: Any, expected: str) -> None:
    got = convert_logical(logical, raw)
    assert isinstance(got, PgLiteral)
    assert got == expected


def test_values_inside_pythons_range_stay_python_objects() -> None:
    assert convert_logical("io.debezium.time.Date", -719162) == date(1, 1, 1)
    assert convert_logical("io.debezium.time.Date", 2932896) == date(9999, 12, 31)
    assert convert_logical("io.debezium.time.MicroTimestamp", 253402300799999999) == datetime(
        9999, 12, 31, 23, 59, 59, 999999
    )
    assert convert_logical("io.debezium.time.ZonedTimestamp", "2038-01-19T03:14:07.999999Z") == datetime(
        2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC
    )
    assert convert_logical("io.debezium.time.MicroDuration", 37091106789000) == timedelta(
        microseconds=37091106789000
    )


def test_a_bc_date_read_by_the_snapshot_arrives_without_its_era() -> None:
    # date '0044-03-15 BC' arrived from the snapshot as the day count of 0044-03-15 AD
    # (measured; streamed, it arrives as -735160): nothing to undo.
    assert convert_logical("io.debezium.time.Date", -703383) == date(44, 3, 15)


def test_civil_calendar_matches_python_where_python_reaches() -> None:
    for days in range(-719162, 2932897, 97):
        assert date(*civil_from_days(days)) == date(1970, 1, 1) + timedelta(days=days)
    assert civil_from_days(-719528) == (0, 1, 1)  # 0001-01-01 BC; year 0 is a leap year
    assert civil_from_days(-719529) == (-1, 12, 31)


def test_arrays_become_one_literal_with_elements_converted_by_their_type() -> None:
    types = row_logical_types(
        {
            "type": "record",
            "name": "Envelope",
            "fields": [
                {
                    "name": "before",
                    "type": [
                        "null",
                        {
                            "type": "record",
                            "name": "Value",
                            "fields": [{"name": k, "type": v} for k, v in FIELDS["postgres"].items()],
                        },
                    ],
                }
            ],
        }
    )
    assert types["c_numeric_arr"] == "array:" + VSD  # through the named reference
    assert types["c_date_arr"] == "array:io.debezium.time.Date"
    assert types["c_text_arr"] == "array:"
    # Values as decoded from the scratch connector's topic.
    assert convert_logical(types["c_text_arr"], ["a", "b,c", '"q"', None, "ü😀", "NULL", "x\\y"]) == (
        '{"a","b,c","\\"q\\"",NULL,"ü😀","NULL","x\\\\y"}'
    )
    assert convert_logical(types["c_int_arr"], [1, None, -2]) == '{"1",NULL,"-2"}'
    assert convert_logical(types["c_numeric_arr"], [_vsd("1.5"), _vsd("1E+40"), None]) == (
        '{"1.5","1E+40",NULL}'
    )
    assert convert_logical(types["c_date_arr"], [18262, -622191234]) == '{"2020-01-01","infinity"}'
    assert convert_logical(types["c_timestamptz_arr"], ["2020-01-01T00:00:00.000000Z", "infinity"]) == (
        '{"2020-01-01T00:00:00+00:00","infinity"}'
    )
    assert convert_logical(types["c_boolean_arr"], [True, False, None]) == '{"t","f",NULL}'
    assert convert_logical(types["c_jsonb_arr"], ['{"a": 1}', "[1, 2]"]) == '{"{\\"a\\": 1}","[1, 2]"}'
    assert convert_logical(types["c_text_arr"], []) == "{}"
    assert array_literal([b"\x00\xff"]) == '{"\\\\x00ff"}'
