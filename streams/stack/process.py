"""Start and stop the stack's processes, tracked by pid file and never by name.

A pid is trusted only while `/proc/<pid>/cmdline` still mentions the state directory, so a
reused pid of some unrelated process is never signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.errors import StackError


@dataclass(frozen=True)
class Running:
    pid: int
    started_at: float


def read_running(pid_file: Path, marker: str) -> Running | None:
    """The process recorded in `pid_file`, if it is alive and still ours."""
    try:
        pid = int(pid_file.read_text().strip())
        started = pid_file.stat().st_mtime
    except (FileNotFoundError, ValueError):
        return None
    cmdline = _cmdline(pid)
    if cmdline is None or marker not in cmdline:
        return None
    return Running(pid=pid, started_at=started)


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if state == "Z":  # a zombie is dead; its parent just has not reaped it
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def spawn(
    argv: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a detached process (own session) with stdout/stderr appended to `log_file`.

    The handle lets the caller notice an early exit; the pid file is how later commands find it.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                user=user,
                start_new_session=True,
            )
        except OSError as exc:
            msg = f"could not execute {argv[0]}: {exc}"
            raise StackError(msg) from exc
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def run_once(argv: Sequence[str], *, log_file: Path, user: str | None = None) -> None:
    """Run a preparation step (initdb, storage format) to completion, logging its output."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        log.write(f"\n--- running: {' '.join(argv)}\n".encode())
        log.flush()
        done = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, user=user, check=False
        )
    if done.returncode != 0:
        # The cause in the error itself: CI output shows the error, not the log file.
        tail = "\n".join(f"  | {line}" for line in log_tail(log_file, 15).splitlines())
        msg = f"{' '.join(argv)} failed with exit {done.returncode}; last lines of {log_file}:\n{tail}"
        raise StackError(msg)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as handle:
            return b"".join(deque(handle, maxlen=lines)).decode(errors="replace")
    except FileNotFoundError:
        return "(no log yet)"


def stop(running: Running, graceful: signal.Signals, timeout_s: float, marker: str, pid_file: Path) -> bool:
    """Signal gracefully, wait up to `timeout_s`, then SIGKILL the process group.

    Returns True if the graceful signal was enough.
    """
    _signal_group(running.pid, graceful)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_running(pid_file, marker) is None:
            return True
        time.sleep(0.1)  # polling a pid for exit; no event to wait on
    _signal_group(running.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and read_running(pid_file, marker) is not None:
        time.sleep(0.05)
    return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its children (PostgreSQL forks a backend per client)."""
    total_kb = 0
    for child in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total_kb / 1024 if total_kb else None


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return found
    for child in map(int, children):
        found += [child, *_descendants(child)]
    return found
