"""Markers are applied by folder so a test cannot forget its tier; scenario rows are reported."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from tests import scenarios
from tests.scenarios import scenario_numbers

__all__ = ["scenario_numbers"]
TESTS = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(id): a fault scenario of tests/faults/README.md (K1..X3)")


# Scenarios whose cost grows with the rows earlier scenarios left on the fault stack, run first
# among the scenarios: E6's twenty full source-vs-sink comparisons took 186 s after the others
# (16.7k orders, 42k order lines), about 80 s on the fresh stack. No test depends on the order.
FIRST_SCENARIOS = ("test_lookup_convergence.py",)


def _tier(item: pytest.Item) -> str:
    return Path(str(item.fspath)).relative_to(TESTS).parts[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    first = [
        item for item in items if _tier(item) == "faults" and Path(str(item.fspath)).name in FIRST_SCENARIOS
    ]
    if first:
        chosen = {id(item) for item in first}
        rest = [item for item in items if id(item) not in chosen]
        at = next((i for i, item in enumerate(rest) if _tier(item) == "faults"), len(rest))
        items[:] = rest[:at] + first + rest[at:]
    for item in items:
        tier = _tier(item)
        if tier == "integration":
            item.add_marker(pytest.mark.integration)
        elif tier == "faults":
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.slow)
            if item.get_closest_marker("timeout") is None:
                # Scenarios restart JVMs several times; 300 s (the default) is too short on 2 cores.
                item.add_marker(pytest.mark.timeout(1200))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    scenarios.record(item, outcome.get_result())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = scenarios.write_report()
    if path is not None:
        print(f"\nscenario report: {path}")
