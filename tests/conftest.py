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
    config.addinivalue_line("markers", "scenario(id): a row of ../shared/RELIABILITY.md (K1..X3)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(TESTS).parts
        if parts[0] == "integration":
            item.add_marker(pytest.mark.integration)
        elif parts[0] == "faults":
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
