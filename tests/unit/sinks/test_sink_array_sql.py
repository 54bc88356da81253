"""Array columns: bound as one literal per row (``text[]``) and cast back in the select list."""

from __future__ import annotations

from streams.sinks import Column, TableMapping, validate_mappings
from streams.sinks.statements import hard_delete_sql, stored_sql, upsert_sql


def mapping(*cols: Column) -> TableMapping:
    m = TableMapping("public.t", "t", [Column("id", type="bigint"), *cols], key=["id"])
    validate_mappings([m])
    return m


def test_array_columns_travel_as_literals_and_are_cast_in_the_select_list() -> None:
    m = mapping(Column("tags", type="text[]"), Column("amounts", type="numeric(10,2)[]"), Column("n"))
    q = upsert_sql(m).as_string(None)
    assert "unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::bytea[], %b::timestamptz[])" in q
    assert 'u."tags"::text[] AS "tags"' in q
    assert 'u."amounts"::numeric(10,2)[] AS "amounts"' in q
    assert 'u."n",' in q  # scalars pass through unchanged


def test_tables_without_arrays_keep_the_plain_statement() -> None:
    q = upsert_sql(mapping(Column("n", type="numeric"))).as_string(None)
    assert "i AS (SELECT * FROM unnest(%b::bigint[], %b::numeric[]," in q


def test_deletes_and_ledger_lookups_bind_only_scalar_keys() -> None:
    m = mapping(Column("tags", type="text[]"))
    assert "text[]" not in hard_delete_sql(m).as_string(None)
    assert "text[]" not in stored_sql(m).as_string(None)
