"""CPU seconds and memory of process trees, read from /proc (PostgreSQL forks a backend per client)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from streams.stack.process import _descendants

_TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    return [pid, *_descendants(pid)]


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def rss_mb(pid: int) -> float:
    return sum(_status_kb(p, "VmRSS:") for p in tree(pid)) / 1024


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (PostgreSQL's shared buffers) are counted once overall."""
    kb = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    kb += int(line.split()[1])
                    break
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            kb += _status_kb(p, "VmRSS:")
    return kb / 1024


class Sampler:
    """Samples RSS/PSS of named process trees once a second; keeps peaks and a worker RSS series."""

    def __init__(self, pids: Callable[[], dict[str, int]], interval_s: float = 1.0) -> None:
        self._pids, self._interval = pids, interval_s
        self.peak_rss: dict[str, float] = {}
        self.peak_pss: dict[str, float] = {}
        self.peak_total_pss = 0.0
        self.series: list[tuple[float, str, float]] = []  # (t, component, rss MB)
        self.loadavg: list[float] = []  # 1-min load average, one per sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(self._interval):
            self.loadavg.append(os.getloadavg()[0])
            total = 0.0
            for name, pid in dict(self._pids()).items():
                rss, pss = rss_mb(pid), pss_mb(pid)
                if rss == 0:
                    continue
                total += pss
                self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss)
                self.peak_pss[name] = max(self.peak_pss.get(name, 0.0), pss)
                if name.startswith("worker"):
                    self.series.append((time.monotonic() - t0, name, rss))
            self.peak_total_pss = max(self.peak_total_pss, total)


def cpu_times(stat: str | None = None) -> tuple[int, int]:
    """(idle, total) jiffies of the whole box from /proc/stat's ``cpu`` line (idle includes iowait)."""
    text = stat if stat is not None else Path("/proc/stat").read_text()
    for line in text.splitlines():
        if line.startswith("cpu "):
            ticks = [int(x) for x in line.split()[1:]]
            # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
            counted = ticks[:8]
            return counted[3] + (counted[4] if len(counted) > 4 else 0), sum(counted)
    msg = "no aggregate cpu line in /proc/stat"
    raise ValueError(msg)


def idle_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of the box's CPU time that was idle between two ``cpu_times`` readings (0..1)."""
    idle, total = after[0] - before[0], after[1] - before[1]
    return idle / total if total > 0 else float("nan")
