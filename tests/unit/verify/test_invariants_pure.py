"""The [[invariants]] model: placeholders checked at load, names unique, schema quoted."""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.project.invariants import InvariantSpec
from streams.project.tables import parse_tables
from streams.verify.invariants import InvariantReport, InvariantTally, _record, render


def _file(sql: str, name: str = "x", twice: bool = False) -> str:
    block = f'[[invariants]]\nname = "{name}"\nsql = """{sql}"""\n'
    return block * (2 if twice else 1)


def test_invariants_parse_with_their_defaults() -> None:
    [spec] = parse_tables(_file("SELECT id FROM {schema}.t WHERE '{{}}' <> ''")).invariants
    assert (spec.name, spec.key_columns) == ("x", 1)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (_file("SELECT 1 FROM {shema}.t"), "unknown placeholder {shema}"),
        (_file("SELECT '{'"), "literal brace twice"),
        (_file("SELECT 1", twice=True), "x declared twice"),
        (_file(""), "invariants.0.sql"),
    ],
)
def test_a_bad_invariant_fails_at_load_saying_what_to_fix(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("{", r"\{").replace("}", r"\}")):
        parse_tables(text)


def test_the_schema_is_a_quoted_identifier_not_pasted_text() -> None:
    spec = InvariantSpec(name="x", sql="SELECT 1 FROM {schema}.t WHERE a = '{{}}'")
    assert render(spec, 'we"ird').as_string(None) == 'SELECT 1 FROM "we""ird".t WHERE a = \'{}\''


def test_a_key_broken_in_many_rounds_counts_once_and_examples_are_the_first_keys() -> None:
    spec = InvariantSpec(name="x", sql="SELECT 1", key_columns=2)
    tally = InvariantTally("x")
    _record(tally, spec, ["a", "b", "c"], [(1, 1, "x"), (1, 2, None)])
    _record(tally, spec, ["a", "b", "c"], [])
    _record(tally, spec, ["a", "b", "c"], [(1, 1, "y"), (2, 1, 0), (3, 1, 0), (4, 1, 0)])
    assert (tally.rounds, tally.violating_rounds, tally.violations) == (3, 2, 6)
    assert len(tally.keys) == 5
    assert tally.examples == ["a=1 b=1 c=x", "a=1 b=2 c=NULL", "a=2 b=1 c=0"]
    assert not InvariantReport("s", [tally]).ok
    assert InvariantReport("s", [InvariantTally("y")]).ok


def test_keys_a_baseline_saw_violating_are_not_counted_but_new_ones_are() -> None:
    spec = InvariantSpec(name="x", sql="SELECT 1")
    tally = InvariantTally("x", ignored=frozenset({("7",)}))
    _record(tally, spec, ["id"], [(7,)])  # a source row that breaks the rule itself: not this run's
    assert (tally.violating_rounds, tally.keys) == (0, set())
    _record(tally, spec, ["id"], [(7,), (8,)])
    assert (tally.violating_rounds, tally.violations, tally.keys) == (1, 1, {("8",)})
