"""Summarize a py-spy ``--format raw`` (folded stacks) profile: where the worker's time goes."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path


def record(pid: int, out: Path, rate_hz: int = 50) -> subprocess.Popen[bytes]:
    """py-spy on ``pid`` until it exits: non-blocking (the worker is never paused), folded stacks."""
    spy = Path(sys.executable).with_name("py-spy")
    cmd = [str(spy), "record", "--nonblocking", "--format", "raw", "-r", str(rate_hz)]
    cmd += ["-p", str(pid), "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame(raw: str) -> str:
    """``func (path/to/file.py:12)`` → ``func (file.py)``; project frames keep ``streams/...`` paths."""
    name, _, where = raw.partition(" (")
    path = where.split(":")[0]
    short = path[path.index("streams/") :] if "streams/" in path else path.rsplit("/", 1)[-1]
    return f"{name} ({short})" if where else raw


def summarize(path: Path, top: int = 12) -> dict[str, list[tuple[str, float]]]:
    """Top frames by own time, and the project's (``streams/``) frames by inclusive time."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) or "(native / idle)" for f in stack.split(";")]
        self_time[frames[-1]] += n
        for f in set(frames):
            if "(streams/" in f and "(streams/cli/" not in f and "(streams/__main__" not in f:
                inclusive[f] += n
    if not total:
        return {"self": [], "inclusive": [], "samples": [("total", 0.0)]}
    below = Counter({k: v for k, v in inclusive.items() if v < 0.95 * total})  # not the run loop itself

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in c.most_common(top)]

    return {"self": share(self_time), "inclusive": share(below), "samples": [("total", float(total))]}
