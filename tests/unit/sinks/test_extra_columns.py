"""Extra columns (PipelineSettings.extra_columns): mapped without code, validated like any mapping."""

from __future__ import annotations

import pytest
from psycopg import sql

from streams.demo.project import shipping_mappings
from streams.errors import ConfigError
from streams.settings import PipelineSettings
from streams.sinks import validate_mappings
from streams.sinks.ddl import added_columns_ddl
from streams.sinks.mapping import with_extra_columns


def customers(extra: dict[str, dict[str, str]]) -> object:
    return validate_mappings(with_extra_columns(shipping_mappings("s"), extra))["public.customers"]


def test_an_extra_column_is_appended_with_its_type() -> None:
    m = customers({"public.customers": {"bio": "bio_copy", "credit_limit": "credit:numeric(12,2)"}})
    names = [(c.source, c.name, c.type) for c in m.value_columns]  # type: ignore[attr-defined]
    assert names[-2:] == [("bio", "bio_copy", "text"), ("credit_limit", "credit", "numeric(12,2)")]


def test_added_columns_ddl_quotes_every_name() -> None:
    m = customers({"public.customers": {"display_name": 'x"; DROP TABLE canary; --'}})
    text = " ".join(s.as_string(None) for s in added_columns_ddl(m))  # type: ignore[arg-type]
    assert 'ADD COLUMN IF NOT EXISTS "x""; DROP TABLE canary; --" text' in text
    assert all(isinstance(s, sql.Composed) for s in added_columns_ddl(m))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"public.customers": {"display_name": "email"}}, "both map to 'email'"),
        ({"public.customers": {"bio": "_cf_position"}}, "reserved prefix"),
        ({"public.customers": {"bio": "b" * 64}}, "longer than 63 bytes"),
        ({"public.customers": {"bio": "bio_copy:money"}}, "unsupported column type"),
        ({"public.nope": {"bio": "bio"}}, "no mapping reads"),
    ],
)
def test_bad_extra_columns_are_rejected(extra: dict[str, dict[str, str]], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        customers(extra)


def test_settings_take_json_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.settings import load_settings

    monkeypatch.setenv("CHANGEFEED_PIPELINE__EXTRA_COLUMNS", '{"public.customers": {"bio": "bio"}}')
    assert load_settings().pipeline.extra_columns == {"public.customers": {"bio": "bio"}}
    assert PipelineSettings().extra_columns == {}
