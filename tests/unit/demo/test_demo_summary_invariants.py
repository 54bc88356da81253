"""The demo summary's invariant rows: rounds during the load, violations per invariant, the final round."""

from __future__ import annotations

from rich.console import Console

from streams.demo.latency import latency_stats
from streams.demo.offsets import TopicCounts
from streams.demo.summary import DemoSummary, summary_table
from streams.verify.invariants import InvariantReport, InvariantTally


def _text(s: DemoSummary) -> str:
    console = Console(width=200, record=True)
    console.print(summary_table(s))
    return console.export_text()


def _summary(**kw: object) -> DemoSummary:
    stats = latency_stats([0.1], 0)
    return DemoSummary(10, 1.0, TopicCounts(1, 1, 1, 0), 1, {"t": 1}, 0, stats, {}, 1.0, True, 5.0, **kw)  # type: ignore[arg-type]


def test_the_summary_shows_rounds_and_violations_per_invariant_and_the_final_round() -> None:
    broken = InvariantTally("order total equals the sum of its lines", 40, 7, 9, {("1",), ("2",)})
    fine = InvariantTally("every order line has its order", 40)
    text = _text(
        _summary(
            invariants=InvariantReport("public", [broken, fine], rounds=40, seconds=12.0),
            invariants_after=InvariantReport("public", [InvariantTally("a", 1)], rounds=1),
            invariants_mode="orders: atomic",
        )
    )
    assert "invariants during load (orders: atomic)" in text
    assert "40 rounds in 12 s" in text
    assert "violated: order total equals the sum of its lines" in text
    assert "7 rounds, 2 keys" in text
    assert "0 rounds, 0 keys" in text
    assert "invariants after verify" in text


def test_no_invariants_no_rows_and_a_failed_checker_says_why() -> None:
    assert "invariants" not in _text(_summary())
    assert "not checked: connection refused" in _text(_summary(invariants_error="connection refused"))


def test_the_mode_comes_from_the_sources_of_the_tables_file() -> None:
    from types import SimpleNamespace

    from streams.demo.invariants import transaction_modes

    assert transaction_modes(SimpleNamespace()) == "per-change"  # a tables file without [[sources]]
    atomic = SimpleNamespace(value="atomic")
    sources = (SimpleNamespace(connector="orders", transactions=atomic),)
    assert transaction_modes(SimpleNamespace(sources=sources)) == "orders: atomic"
