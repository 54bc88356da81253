"""The atomic vs per-change phase's pure parts: its tables files, ratios, table and goal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import report, txmodes, txreport
from streams.project.sources import TransactionMode
from streams.project.tables import load_tables
from tests.unit.bench.test_report_goals import document


@pytest.mark.parametrize("mode", txmodes.MODES)
def test_tables_file_declares_the_orders_source_in_the_mode(tmp_path: Path, mode: str) -> None:
    path = txmodes.tables_file(tmp_path, mode)
    sources = load_tables(path).sources
    assert [(s.connector, s.transactions) for s in sources] == [("orders", TransactionMode(mode))]
    assert {t.sink for t in load_tables(path).tables} >= {"order_view", "order_lines"}


def test_tables_file_replaces_a_sources_table_the_demo_file_already_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = tmp_path / "demo.toml"
    demo.write_text(
        txmodes.DEMO_TABLES.read_text().replace(
            "[[invariants]]",
            '[[sources]]\nconnector = "orders"\ntransactions = "atomic"\n\n[[invariants]]',
            1,
        )
    )
    monkeypatch.setattr(txmodes, "DEMO_TABLES", demo)
    file = load_tables(txmodes.tables_file(tmp_path / "out", "per-change"))
    assert [s.transactions for s in file.sources] == [TransactionMode.PER_CHANGE]
    assert len(file.invariants) == 2  # the tables after the removed [[sources]] are kept


def mode(events_s: float, p99: float, bad: int, rss: float = 150.0) -> dict[str, Any]:
    return {
        "drain": {"events_s": events_s, "tx_s": events_s / 5, "cpu_s_per_1k_ev": 0.05, "peak_rss_mb": rss},
        "fixed_rate": {
            "latency": {"p50_ms": p99 / 4, "p95_ms": p99 / 2, "p99_ms": p99},
            "invariants": {"rounds": 300, "violating_rounds": bad},
            "peak_rss_mb": rss,
            "cpu_s_per_1k_ev": 0.2,
        },
    }


def test_ratios_are_atomic_over_per_change() -> None:
    modes = {"per-change": mode(10_000, 200, 40), "atomic": mode(8_000, 300, 0, 180)}
    r = txmodes.ratios(modes)
    assert r["drain_events_s"] == 0.8
    assert r["p99_ms"] == 1.5
    assert r["drain_peak_rss_mb"] == 1.2


def test_ratios_of_a_missing_mode_are_none() -> None:
    assert txmodes.ratios({"per-change": mode(10_000, 200, 40)})["drain_events_s"] is None


def test_markdown_and_goal() -> None:
    modes = {"per-change": mode(10_000, 200, 40), "atomic": mode(8_000, 300, 0)}
    tx = {"modes": modes, "ratios": txmodes.ratios(modes), "size": {"rate": 200}}
    text = "\n".join(txreport.markdown(tx))
    assert "| drain events/s | 10,000 | 8,000 | 0.80× |" in text
    assert "| invariant-violating checker rounds | 40 of 300 rounds | 0 of 300 rounds | |" in text
    [goal] = txreport.goals(tx)
    assert goal["met"] is True
    modes["atomic"]["fixed_rate"]["invariants"]["violating_rounds"] = 2
    assert txreport.goals(tx)[0]["met"] is False
    assert txreport.goals({}) == []
    assert txreport.markdown(None) == []


def test_the_results_document_renders_the_phase_and_judges_its_goal() -> None:
    modes = {"per-change": mode(10_000, 200, 40), "atomic": mode(8_000, 300, 0)}
    doc = document()
    without = report.goals(doc)
    doc["tx_modes"] = {"modes": modes, "ratios": txmodes.ratios(modes), "size": {"rate": 200}}
    doc["goals"] = report.goals(doc)
    assert len(doc["goals"]) == len(without) + 1
    assert doc["goals"][-1]["met"] is True
    assert "## Transactions: atomic vs per-change" in report.markdown(doc)
