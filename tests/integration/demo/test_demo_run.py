"""A shortened `changefeed demo` end to end on the real stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streams.stack.services import StackContext


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_short_demo_passes_end_to_end(stack: StackContext) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams",
            "demo",
            "--duration",
            "10",
            "--rate",
            "20",
            "--verify-timeout",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for line in (
        "change events captured",
        "latency p50 / p95 / p99",
        "bus: events handled",
        "PASS",
        "changefeed down",
    ):
        assert line in done.stdout
