"""Which tables `connectors apply` backfills after an include-list change."""

from __future__ import annotations

from streams.connect.backfill import added_tables
from streams.connect.diff import diff_config


def test_tables_added_to_a_running_connector_are_backfilled_patterns_reported() -> None:
    live = {"table.include.list": "public.a,public.changefeed_signal"}
    desired = {"table.include.list": "public.a,public.b,public.changefeed_signal,app\\..*"}
    diff = diff_config("c", live, desired)
    assert added_tables(diff, "public.changefeed_signal") == (["public.b"], ["app\\..*"])


def test_a_new_connector_or_other_changes_backfill_nothing() -> None:
    assert added_tables(diff_config("c", None, {"table.include.list": "public.a"})) == ([], [])
    diff = diff_config(
        "c", {"table.include.list": "public.a", "x": "1"}, {"table.include.list": "public.a", "x": "2"}
    )
    assert added_tables(diff) == ([], [])
    shrunk = diff_config("c", {"table.include.list": "public.a,public.b"}, {"table.include.list": "public.a"})
    assert added_tables(shrunk) == ([], [])
