from types import SimpleNamespace
from typing import Any

import pytest

from tests import scenarios


def _item(case: str | None, numbers: dict[str, Any]) -> Any:
    marker = SimpleNamespace(args=("K3",))
    item = SimpleNamespace(
        get_closest_marker=lambda name: marker if name == "scenario" else None,
        nodeid=f"tests/faults/test_x.py::test_k3[{case}]",
        user_properties=[("scenario_numbers", numbers)],
    )
    if case is not None:
        item.callspec = SimpleNamespace(id=case)
    return item


def test_parametrized_cases_keep_their_numbers_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenarios, "_ROWS", {})
    passed = SimpleNamespace(when="call", outcome="passed", passed=True, duration=1.0)
    scenarios.record(_item("postgres", {"missing": 0, "rows": 10}), passed)  # type: ignore[arg-type]
    scenarios.record(_item("mariadb", {"missing": 0, "rows": 20}), passed)  # type: ignore[arg-type]
    row = scenarios._ROWS["K3"]
    want = {"postgres.missing": 0, "postgres.rows": 10, "mariadb.missing": 0, "mariadb.rows": 20}
    assert row["numbers"] == want
    assert row["result"] == "PASS"
    assert len(row["tests"]) == 2
