"""The stop guard in a child process: the watchdog ends a stop that hangs, a second signal exits."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

CHILD = """
import signal, time
from streams.stop_signals import StopGuard
guard = StopGuard({timeout})
guard.received(signal.SIGTERM)
{second}
time.sleep(60)  # a stop that never finishes
"""


def run(timeout: float, second: str = "") -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(timeout=timeout, second=second)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done, time.monotonic() - t0


def test_a_stop_that_hangs_ends_at_the_timeout_with_the_stacks() -> None:
    done, took = run(0.5)
    assert done.returncode == 124
    assert took < 10
    assert 'File "<string>", line 7' in done.stderr  # the hung main thread's stack: the sleep


def test_a_second_signal_exits_at_once() -> None:
    done, took = run(30, "guard.received(signal.SIGINT)")
    assert done.returncode == 128 + signal.SIGINT
    assert took < 10
