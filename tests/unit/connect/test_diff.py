"""Per-property diffs between live and desired connector configs."""

from __future__ import annotations

from streams.connect.diff import Change, diff_config


def test_nothing_live_is_a_create_listing_every_property() -> None:
    diff = diff_config("c", None, {"b": "2", "a": "1"})
    assert diff.create
    assert not diff.empty
    assert [c.key for c in diff.changes] == ["a", "b", "name"]


def test_identical_config_is_empty_even_with_connect_added_name() -> None:
    live = {"a": "1", "name": "c"}
    assert diff_config("c", live, {"a": "1"}).empty


def test_values_compare_as_connect_stores_them() -> None:
    assert diff_config("c", {"n": "1", "b": "true", "name": "c"}, {"n": 1, "b": True}).empty


def test_one_property_change_is_reported_alone() -> None:
    diff = diff_config("c", {"a": "1", "b": "2", "name": "c"}, {"a": "1", "b": "3"})
    assert [(c.key, c.change, c.old, c.new) for c in diff.changes] == [("b", Change.CHANGED, "2", "3")]
    assert str(diff.changes[0]) == "~ b: 2 -> 3"


def test_added_and_removed_properties() -> None:
    diff = diff_config("c", {"old": "x", "name": "c"}, {"new": "y"})
    assert {(c.key, c.change) for c in diff.changes} == {("old", Change.REMOVED), ("new", Change.ADDED)}


def test_placeholders_compare_literally() -> None:
    live = {"database.password": "${file:/s/p:k}", "name": "c"}
    assert diff_config("c", live, {"database.password": "${file:/s/p:k}"}).empty
