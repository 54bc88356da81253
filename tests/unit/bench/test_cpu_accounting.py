"""CPU accounting of the benchmark: process trees with all threads and children, and box idle share."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench import resources

# user nice system idle iowait irq softirq steal guest guest_nice
STAT = "cpu  100 5 50 800 20 3 2 0 40 0\ncpu0 50 2 25 400 10 1 1 0 20 0\n"


def test_cpu_times_reads_the_aggregate_line_and_counts_iowait_as_idle() -> None:
    idle, total = resources.cpu_times(STAT)
    assert (idle, total) == (820, 980)  # guest is already inside user: not counted twice


def test_idle_share_is_the_idle_part_of_the_elapsed_ticks() -> None:
    assert resources.idle_share((800, 1000), (850, 1200)) == pytest.approx(0.25)
    assert resources.idle_share((1, 1), (1, 1)) != resources.idle_share((1, 1), (1, 1))  # NaN: no time


def _wait_cpu(pid: int, at_least: float, timeout_s: float = 20.0) -> float:
    deadline = time.monotonic() + timeout_s
    while True:
        used = resources.cpu_seconds(pid)
        if used >= at_least or time.monotonic() > deadline:
            return used
        time.sleep(0.05)


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:  # the burning grandchild first: it would outlive its parent
        for pid in reversed(resources.tree(p.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        p.wait()


# The parent only sleeps; the CPU is burnt by a child process / a second thread.
CHILD = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "while True: pass"])
time.sleep(60)
"""
THREAD = """
import threading, time
def burn():
    while True:
        pass
threading.Thread(target=burn, daemon=True).start()
time.sleep(60)
"""


@pytest.mark.parametrize("code", [CHILD, THREAD], ids=["child-process", "thread"])
def test_cpu_seconds_counts_the_whole_tree(spawn: list[subprocess.Popen[bytes]], code: str) -> None:
    p = subprocess.Popen([sys.executable, "-c", code])
    spawn.append(p)
    assert _wait_cpu(p.pid, 0.3) >= 0.3
