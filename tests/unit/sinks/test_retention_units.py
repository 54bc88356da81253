from datetime import timedelta

import pytest

from streams.errors import ConfigError
from streams.sinks import Column, TableMapping
from streams.sinks.retention import parse_duration, tombstone_tables


@pytest.mark.parametrize(
    ("text", "want"),
    [("90s", timedelta(seconds=90)), ("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)),
     ("7d", timedelta(days=7)), (" 2W ", timedelta(weeks=2)), ("0d", timedelta(0))],
)  # fmt: skip
def test_durations_parse(text: str, want: timedelta) -> None:
    assert parse_duration(text) == want


@pytest.mark.parametrize("text", ["", "7", "d", "1.5d", "-1d", "7 days", "7y"])
def test_bad_durations_say_what_to_write(text: str) -> None:
    with pytest.raises(ConfigError, match=r"e\.g\. 7d"):
        parse_duration(text)


def test_only_hard_delete_mappings_keep_tombstones() -> None:
    cols = [Column("id", type="bigint"), Column("email")]
    hard = TableMapping("public.a", "a_view", cols, key=["id"], sink_schema="s")
    soft = TableMapping("public.b", "b_view", cols, key=["id"], sink_schema="s", delete_policy="soft")
    assert tombstone_tables([hard, soft]) == [("s", "a_view__cf_deleted")]
