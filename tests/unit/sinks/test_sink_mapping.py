"""Mapping validation: every way a mapping can be wrong fails at startup with a clear message."""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.sinks import Column, ConflictPolicy, DeletePolicy, TableMapping, validate_mappings


def mapping(**kw: object) -> TableMapping:
    base: dict[str, object] = {
        "source_table": "public.customers",
        "sink_table": "customer_directory",
        "columns": [Column("id", type="bigint"), Column("email")],
        "key": ["id"],
    }
    return TableMapping(**(base | kw))  # type: ignore[arg-type]  # test builder


def test_valid_mapping_is_indexed_by_source_table() -> None:
    m = mapping(delete_policy="soft", conflict_policy="last_writer_wins")
    assert validate_mappings([m]) == {"public.customers": m}
    assert m.delete_policy is DeletePolicy.SOFT
    assert m.conflict_policy is ConflictPolicy.LAST_WRITER_WINS
    assert isinstance(m.columns, tuple)
    assert hash(m)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"columns": [Column("id"), Column("mail", "email"), Column("email")]}, "both map to 'email'"),
        ({"columns": [Column("id"), Column("x", "_cf_position")]}, "reserved prefix"),
        ({"columns": [Column("id"), Column("x", "a" * 64)]}, "longer than 63 bytes"),
        ({"columns": [Column("id"), Column("x", "é" * 32)]}, "longer than 63 bytes"),
        ({"columns": [Column("id"), Column("x", "a\x00b")]}, "NUL"),
        ({"columns": [Column("id"), Column("x", type="text; DROP TABLE canary")]}, "unsupported column type"),
        ({"columns": [Column("id"), Column("x", type="text[][]")]}, "unsupported column type"),
        ({"columns": [Column("id"), Column("x", type="point[]")]}, "unsupported column type"),
        ({"columns": [Column("id", type="text[]")]}, "are arrays"),
        ({"key": ["nope"]}, "key"),
        ({"key": []}, "key"),
        ({"key": ["id", "id"]}, "key"),
        ({"columns": []}, "no columns"),
        ({"sink_table": "changefeed_offsets"}, "reserved"),
        ({"sink_table": "t" * 60}, "tombstone table"),
    ],
)
def test_invalid_mapping(kw: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        validate_mappings([mapping(**kw)])


def test_names_colliding_across_mappings() -> None:
    with pytest.raises(ConfigError, match="mapped twice"):
        validate_mappings([mapping(), mapping(sink_table="other")])
    with pytest.raises(ConfigError, match="would be written by"):
        validate_mappings([mapping(), mapping(source_table="public.other")])
    with pytest.raises(ConfigError, match="would be written by"):
        validate_mappings(
            [mapping(), mapping(source_table="public.other", sink_table="customer_directory__cf_deleted")]
        )
    # Same table name in another schema is a different table.
    validate_mappings([mapping(), mapping(source_table="public.other", sink_schema="mirror")])


def test_case_and_injection_shaped_names_are_legal_identifiers() -> None:
    m = mapping(
        sink_table="x; DROP TABLE canary; --",
        columns=[Column("id", "Id", "bigint"), Column("e", 'we"ird ünï'), Column("E", "ID")],
        key=["Id"],
    )
    assert validate_mappings([m])
    assert [c.name for c in m.value_columns] == ['we"ird ünï', "ID"]
