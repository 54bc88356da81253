"""The oracle's pure parts: type normalization, SQL shape, chunking and divergence reporting."""

from __future__ import annotations

import json
import re
import threading

import pytest
from psycopg import sql

from streams.errors import ConfigError
from streams.sinks import Column, DeletePolicy, TableMapping
from streams.verify import query
from streams.verify.compare import Digest, Divergence, Key, chunk_bounds, compare_table, diff_keys
from streams.verify.mysql_ident import mysql_ident
from streams.verify.normalize import (
    ColumnKind,
    Dialect,
    Family,
    canonical_json,
    canonical_template,
    kind_of,
    needs_python,
    row_hash_template,
)
from streams.verify.spec import spec_for


@pytest.mark.parametrize(
    ("sink_type", "kind"),
    [
        ("bigint", ColumnKind(Family.INTEGER)),
        ("numeric(12,2)", ColumnKind(Family.NUMERIC, 2)),
        ("numeric(12, 4)", ColumnKind(Family.NUMERIC, 4)),
        ("numeric(9)", ColumnKind(Family.NUMERIC, 0)),
        ("numeric", ColumnKind(Family.NUMERIC, None)),
        ("timestamptz", ColumnKind(Family.TIMESTAMP)),
        ("jsonb", ColumnKind(Family.JSON)),
        ("varchar(64)", ColumnKind(Family.TEXT)),
        ("bytea", ColumnKind(Family.BYTES)),
        ("text[]", ColumnKind(Family.ARRAY, None, Family.TEXT)),
        ("numeric(10,2)[]", ColumnKind(Family.ARRAY, 2, Family.NUMERIC)),
        ("timestamptz[]", ColumnKind(Family.ARRAY, None, Family.TIMESTAMP)),
    ],
)
def test_sink_types_map_to_explicit_families(sink_type: str, kind: ColumnKind) -> None:
    assert kind_of(sink_type) == kind


@pytest.mark.parametrize("sink_type", ["real", "double precision", "int4range", "real[]", "text[][]"])
def test_types_without_a_portable_text_form_are_refused(sink_type: str) -> None:
    with pytest.raises(ValueError, match=re.escape(sink_type.split("[")[0])):
        kind_of(sink_type)


def test_numeric_renders_with_the_declared_scale_on_both_engines() -> None:
    kind = ColumnKind(Family.NUMERIC, 2)
    assert canonical_template(Dialect.POSTGRES, kind) == "round({col}::numeric, 2)::text"
    assert canonical_template(Dialect.MARIADB, kind) == "CAST(CAST({col} AS DECIMAL(65, 2)) AS CHAR)"


def test_unscaled_numeric_trims_trailing_zeros_on_both_engines() -> None:
    pg = canonical_template(Dialect.POSTGRES, ColumnKind(Family.NUMERIC))
    maria = canonical_template(Dialect.MARIADB, ColumnKind(Family.NUMERIC))
    assert "rtrim(rtrim(" in pg
    assert "strpos" in pg
    assert "TRIM(TRAILING '0'" in maria
    assert "INSTR" in maria


def test_timestamps_compare_as_utc_epoch_microseconds() -> None:
    kind = ColumnKind(Family.TIMESTAMP)
    assert "extract(epoch from {col}) * 1000000" in canonical_template(Dialect.POSTGRES, kind)
    assert "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00'" in canonical_template(Dialect.MARIADB, kind)


def test_json_compares_as_jsonb_text() -> None:
    assert canonical_template(Dialect.POSTGRES, ColumnKind(Family.JSON)) == "({col})::jsonb::text"
    assert canonical_template(Dialect.MARIADB, ColumnKind(Family.JSON)) == "CAST({col} AS CHAR)"


def test_date_format_percent_signs_are_escaped_for_bound_queries() -> None:
    assert "%%Y-%%m-%%d" in canonical_template(Dialect.MARIADB, ColumnKind(Family.DATE))


def test_row_hash_distinguishes_null_from_empty() -> None:
    t = row_hash_template(Dialect.POSTGRES, 2)
    assert t == "md5(concat_ws('|', coalesce(md5({0}), '~'), coalesce(md5({1}), '~')))"
    assert row_hash_template(Dialect.MARIADB, 1) == "MD5(CONCAT_WS('|', COALESCE(MD5({0}), '~')))"


def test_mysql_ident_quotes_and_refuses_backticks() -> None:
    assert mysql_ident("orders", "order_lines") == "`orders`.`order_lines`"
    for bad in ("a`b", "", "x\x00"):
        with pytest.raises(ConfigError):
            mysql_ident(bad)


def _mapping(source: str = "orders.orders", policy: DeletePolicy = DeletePolicy.HARD) -> TableMapping:
    return TableMapping(
        source,
        "order_view",
        [Column("id", "order_id", "bigint"), Column("total", type="numeric(12,2)"), Column("note")],
        ["order_id"],
        delete_policy=policy,
    )


def test_spec_marks_columns_missing_from_the_source_as_derived() -> None:
    spec = spec_for(_mapping(), Dialect.MARIADB, {"id", "total"})
    assert spec.source.values == ("total",)
    assert spec.sink.values == ("total",)
    assert spec.derived == ("note",)
    assert spec.chunkable


def test_sql_uses_quoted_identifiers_and_bound_values() -> None:
    spec = spec_for(_mapping("weird`db.orders"), Dialect.POSTGRES)
    q = query.chunk_digests(spec.sink, spec.key_kinds, spec.value_kinds, spec.chunkable)
    assert isinstance(q, sql.Composed)
    spec2 = spec_for(_mapping("weird`db.orders"), Dialect.MARIADB)
    with pytest.raises(ConfigError):
        query.chunk_digests(spec2.source, spec2.key_kinds, spec2.value_kinds, True)


def test_mariadb_sql_text() -> None:
    spec = spec_for(_mapping(), Dialect.MARIADB)
    q = query.key_hashes(spec.source, spec.key_kinds, spec.value_kinds, True)
    assert isinstance(q, str)
    assert "FROM `orders`.`orders` WHERE `id` BETWEEN %s AND %s" in q


def test_soft_delete_sinks_compare_live_rows_only() -> None:
    spec = spec_for(_mapping(policy=DeletePolicy.SOFT), Dialect.MARIADB)
    assert spec.sink.live_only
    assert not spec.source.live_only


@pytest.mark.parametrize(
    ("chunk", "bounds"), [(0, (-999, 999)), (1, (1000, 1999)), (3, (3000, 3999)), (-1, (-1999, -1000))]
)
def test_chunk_bounds_follow_truncating_division(chunk: int, bounds: tuple[int, int]) -> None:
    assert chunk_bounds(chunk, 1000) == bounds
    low, high = bounds
    assert int(low / 1000) == chunk or low == -999
    assert int(high / 1000) == chunk


def test_diff_keys_reports_missing_extra_and_different_in_key_order() -> None:
    source = {("1",): "a", ("2",): "b", ("10",): "c"}
    sink = {("2",): "B", ("10",): "c", ("11",): "d"}
    assert diff_keys(source, sink) == [
        (("1",), Divergence.MISSING),
        (("2",), Divergence.DIFFERENT),
        (("11",), Divergence.EXTRA),
    ]


class FakeReader:
    """Rows as {key: (hash, values)}; digests computed like the SQL does (count, prefix sum)."""

    def __init__(self, rows: dict[int, tuple[str, tuple[str | None, ...]]]) -> None:
        self.rows = rows
        self.drilled: list[tuple[int, int]] = []

    def chunk_digests(self, size: int) -> dict[int, Digest]:
        out: dict[int, Digest] = {}
        for k, (h, _) in self.rows.items():
            n, s = out.get(int(k / size), (0, 0))
            out[int(k / size)] = (n + 1, s + int(h[:15], 16))
        return out

    def key_hashes(self, low: int, high: int) -> dict[Key, str]:
        self.drilled.append((low, high))
        return {(str(k),): h for k, (h, _) in self.rows.items() if low <= k <= high}

    def row_values(self, key: Key) -> tuple[str | None, ...] | None:
        found = self.rows.get(int(key[0]))
        return None if found is None else found[1]


def _rows(n: int) -> dict[int, tuple[str, tuple[str | None, ...]]]:
    return {k: (f"{k:032x}", (str(k), "x")) for k in range(1, n + 1)}


def test_compare_drills_only_into_chunks_that_differ() -> None:
    source_rows = _rows(5000)
    sink_rows = dict(source_rows)
    sink_rows[2500] = ("f" * 32, ("2500", "y"))
    del sink_rows[4001]
    source, sink = FakeReader(source_rows), FakeReader(sink_rows)
    result = compare_table("t", source, sink, ["a", "b"], chunk_size=1000)
    assert not result.ok
    assert (result.source_rows, result.sink_rows, result.chunks, result.bad_chunks) == (5000, 4999, 6, 2)
    assert source.drilled == [(2000, 2999), (4000, 4999)]
    assert [(d.key, d.kind, d.columns) for d in result.keys] == [
        (("2500",), Divergence.DIFFERENT, ("b",)),
        (("4001",), Divergence.MISSING, ()),
    ]


class FailingReader(FakeReader):
    def chunk_digests(self, size: int) -> dict[int, Digest]:
        raise ConnectionError("source gone")


def test_compare_reads_the_source_on_another_thread_and_raises_its_error() -> None:
    threads: list[str] = []

    class Watching(FakeReader):
        def chunk_digests(self, size: int) -> dict[int, Digest]:
            threads.append(threading.current_thread().name)
            return super().chunk_digests(size)

    compare_table("t", Watching(_rows(10)), Watching(_rows(10)), ["a", "b"])
    assert threads[0].startswith("verify-source") != threads[1].startswith("verify-source")
    with pytest.raises(ConnectionError, match="source gone"):
        compare_table("t", FailingReader({}), FakeReader(_rows(10)), ["a", "b"])
    with pytest.raises(ConnectionError, match="source gone"):
        compare_table("t", FakeReader(_rows(10)), FailingReader({}), ["a", "b"])


def test_compare_limits_listed_keys_but_counts_all() -> None:
    source = FakeReader(_rows(100))
    result = compare_table("t", source, FakeReader({}), ["a", "b"], chunk_size=1000, limit=5)
    assert result.divergent == 100
    assert len(result.keys) == 5


def test_compare_of_equal_sides_is_ok() -> None:
    result = compare_table("t", FakeReader(_rows(50)), FakeReader(_rows(50)), ["a", "b"])
    assert result.ok
    assert result.divergent == 0


def test_infinite_timestamps_and_dates_render_as_words_not_errors() -> None:
    ts = canonical_template(Dialect.POSTGRES, ColumnKind(Family.TIMESTAMP))
    assert ts.startswith("CASE WHEN isfinite({col}) THEN (extract(epoch from {col}) * 1000000)")
    assert ts.endswith("ELSE ({col})::text END")
    day = canonical_template(Dialect.POSTGRES, ColumnKind(Family.DATE))
    assert "WHEN NOT isfinite({col}) THEN ({col})::text" in day
    assert "|| ' BC'" in day  # 0044-03-15 BC must not equal 0044-03-15


def test_arrays_render_element_by_element_in_order_on_postgres_only() -> None:
    kind = kind_of("numeric(10,2)[]")
    q = canonical_template(Dialect.POSTGRES, kind)
    assert "array_agg(round(_cf_e::numeric, 2)::text ORDER BY _cf_o)" in q
    assert "unnest({col}) WITH ORDINALITY" in q
    assert "'{{}}'" in q  # an empty array is '{}', not NULL; braces escaped for format()
    with pytest.raises(ValueError, match="MariaDB has no array"):
        canonical_template(Dialect.MARIADB, kind)


@pytest.mark.parametrize(
    ("mariadb_text", "jsonb_text"),
    [
        ('{"b": 1, "a": [1.0, 2, 1e2]}', '{"a": [1.0, 2, 100], "b": 1}'),
        ('{"s":"\\u00e9😀","n":null,"t":true}', '{"n": null, "s": "é😀", "t": true}'),
        ("[ ]", "[]"),
        ('{"big": 12345678901234567890123.000}', '{"big": 12345678901234567890123.000}'),
    ],
)
def test_json_compares_by_meaning(mariadb_text: str, jsonb_text: str) -> None:
    assert canonical_json(mariadb_text) == canonical_json(jsonb_text)


def test_json_meaning_still_tells_values_apart() -> None:
    assert canonical_json('{"a": 1}') != canonical_json('{"a": "1"}')
    assert canonical_json("[1, 2]") != canonical_json("[2, 1]")
    assert canonical_json('{"a": 12345678901234567890123}') != canonical_json(
        '{"a": 12345678901234567890124}'
    )
    assert canonical_json(None) is None


@pytest.mark.parametrize(
    "text",
    [
        '{"z": "é\\"\\n\\u0001", "a": [true, false, null, {"k": "\\ud83d\\ude00"}], "n": 1.50, "m": 100}',
        '"x"',
        "[]",
        "{}",
    ],
)
def test_canonical_json_escapes_strings_as_json_dumps_does(text: str) -> None:
    value = json.loads(text)
    expected = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if isinstance(value, dict) and "n" in value:  # numbers: normalized decimals, not floats
        expected = expected.replace('"m":100', '"m":1E+2')
    assert canonical_json(text) == expected


def test_tables_with_mariadb_json_are_hashed_in_python() -> None:
    assert needs_python(Dialect.MARIADB, (ColumnKind(Family.INTEGER), ColumnKind(Family.JSON)))
    assert not needs_python(Dialect.POSTGRES, (ColumnKind(Family.JSON),))
    assert not needs_python(Dialect.MARIADB, (ColumnKind(Family.TEXT),))
