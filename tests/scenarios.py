"""The report of the fault scenarios (tests/faults/README.md): every test marked
``@pytest.mark.scenario("K1")`` becomes a row (result, numbers it recorded) in
``reports/faults.json`` and ``reports/faults.md``.

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
    # A parametrized scenario (K3 runs per source) keeps each case's numbers apart.
    callspec = getattr(item, "callspec", None)
    prefix = f"{callspec.id}." if callspec is not None else ""
    for name, value in item.user_properties:
        if name == "scenario_numbers" and isinstance(value, dict):
            row["numbers"].update({f"{prefix}{k}": v for k, v in value.items()})


def _previous_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The scenarios of an earlier report (keyed by id); an unreadable report counts as none."""
    try:
        data = json.loads(path.read_text())
        return {str(r["id"]): r for r in data.get("scenarios", []) if isinstance(r, dict) and "id" in r}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def write_report() -> Path | None:
    """Merge this session's rows into ``reports/faults.json`` (newest result per scenario wins,
    each row stamped with its run time), then regenerate ``faults.md`` from the merged JSON, so
    partial re-runs accumulate into one complete report."""
    if not _ROWS:
        return None
    REPORT_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    merged = _previous_rows(REPORT_DIR / "faults.json")
    for sid, row in _ROWS.items():
        merged[sid] = {**row, "ran_at": stamp}
    rows = [merged[k] for k in sorted(merged)]
    (REPORT_DIR / "faults.json").write_text(json.dumps({"generated": stamp, "scenarios": rows}, indent=2))
    lines = [f"# changefeed fault & bad-input report (updated {stamp})", "",
             "| id | result | ran at (UTC) | seconds | numbers | tests |",
             "| --- | --- | --- | ---: | --- | --- |"]  # fmt: skip
    for row in rows:
        numbers = ", ".join(f"{k}={v}" for k, v in row.get("numbers", {}).items()) or "-"
        if row.get("reasons"):
            numbers += " — skipped: " + "; ".join(row["reasons"])
        tests = "<br>".join(t["test"].split("::")[-1] for t in row.get("tests", []))
        ran = row.get("ran_at", "?")
        lines.append(
            f"| {row['id']} | {row['result']} | {ran} | {row.get('seconds', 0.0):.1f} | {numbers} | {tests} |"
        )
    (REPORT_DIR / "faults.md").write_text("\n".join(lines) + "\n")
    return REPORT_DIR / "faults.md"
