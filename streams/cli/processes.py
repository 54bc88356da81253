"""``changefeed worker --processes N``: N worker processes of one consumer group on this host.

One worker is one Python process (one core at most); a group of them shares the change topics'
partitions, so N processes help up to the partition count. Each child is a plain ``changefeed
worker`` with the same settings (its own sink sessions, its own metrics port: the base port + i).
The parent only forwards SIGINT/SIGTERM (each child stops after its batch in flight) and waits.
A child that exits on its own stops the others and the parent exits with its status: the group
restarts as a whole under its process manager (systemd, compose ``restart:``), and partitions
are never left without an owner while the parent looks healthy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

POLL_S = 0.2


def child_env(base: Mapping[str, str], index: int, metrics_port: int) -> dict[str, str]:
    """Child ``index``'s environment: the parent's, with a metrics port of its own (0 stays off)."""
    env = dict(base)
    if metrics_port:
        env["CHANGEFEED_WORKER__METRICS_PORT"] = str(metrics_port + index)
    return env


def supervise(commands: Sequence[Sequence[str]], envs: Sequence[Mapping[str, str]]) -> int:
    """Run every command, forward stop signals, return the first non-zero exit status (or 0)."""
    children = [subprocess.Popen(list(c), env=dict(e)) for c, e in zip(commands, envs, strict=True)]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = 0
        while True:
            ended = [c for c in children if c.poll() is not None]  # every child polled, each round
            if len(ended) == len(children):
                break
            if ended and not stopping:  # one child alone went away: stop the group
                status = next((c.returncode for c in ended if c.returncode), 0) or 1
                stop(signal.SIGTERM, None)
            time.sleep(POLL_S)
        codes = [c.returncode for c in children]
        return status or next((code for code in codes if code), 0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def worker_commands(n: int, loglevel: str) -> list[list[str]]:
    return [[sys.executable, "-m", "streams", "worker", "--loglevel", loglevel] for _ in range(n)]


def run_workers(n: int, loglevel: str, metrics_port: int) -> int:
    envs = [child_env(os.environ, i, metrics_port) for i in range(n)]
    return supervise(worker_commands(n, loglevel), envs)
