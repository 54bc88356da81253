"""The RELIABILITY.md scenario report: every test marked ``@pytest.mark.scenario("K1")`` becomes
a row (result, numbers it recorded) in ``reports/faults.json`` and ``reports/faults.md``.

A scenario records its numbers with the ``scenario_numbers`` fixture; a skipped scenario is
reported SKIPPED with its reason, never PASS.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

REPORT_DIR = Path(__file__).resolve().parent.parent / "reports"
_ROWS: dict[str, dict[str, Any]] = {}


def scenario_id(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("scenario")
    return str(marker.args[0]) if marker and marker.args else None


@pytest.fixture
def scenario_numbers(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict the scenario fills with its measured numbers (events, diffs, recovery time...)."""
    numbers: dict[str, Any] = {}
    request.node.user_properties.append(("scenario_numbers", numbers))
    return numbers


def record(item: pytest.Item, report: pytest.TestReport) -> None:
    sid = scenario_id(item)
    if sid is None:
        return
    row = _ROWS.setdefault(sid, {"id": sid, "tests": [], "result": "PASS", "numbers": {}, "seconds": 0.0})
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIPPED"}[report.outcome]
        row["tests"].append({"test": item.nodeid, "result": outcome})
        row["seconds"] += report.duration
        if outcome == "SKIPPED":
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            row.setdefault("reasons", []).append(reason)
        rank = {"PASS": 0, "SKIPPED": 1, "FAIL": 2}
        if rank[outcome] > rank[row["result"]]:
            row["result"] = outcome
    for name, value in item.user_properties:
        if name == "scenario_numbers" and isinstance(value, dict):
            row["numbers"].update(value)


def write_report() -> Path | None:
    if not _ROWS:
        return None
    REPORT_DIR.mkdir(exist_ok=True)
    rows = [_ROWS[k] for k in sorted(_ROWS)]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (REPORT_DIR / "faults.json").write_text(json.dumps({"generated": stamp, "scenarios": rows}, indent=2))
    lines = [f"# changefeed fault & bad-input report ({stamp})", "",
             "| id | result | seconds | numbers | tests |", "| --- | --- | ---: | --- | --- |"]  # fmt: skip
    for row in rows:
        numbers = ", ".join(f"{k}={v}" for k, v in row["numbers"].items()) or "-"
        if row.get("reasons"):
            numbers += " — skipped: " + "; ".join(row["reasons"])
        tests = "<br>".join(t["test"].split("::")[-1] for t in row["tests"])
        lines.append(f"| {row['id']} | {row['result']} | {row['seconds']:.1f} | {numbers} | {tests} |")
    (REPORT_DIR / "faults.md").write_text("\n".join(lines) + "\n")
    return REPORT_DIR / "faults.md"
