"""The demo's setup steps and workers, run as ``changefeed`` subprocesses.

Running the real CLI (rather than calling its functions) makes the demo exercise exactly what a
user types, and keeps each step's failure output intact.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from streams.errors import StackError

Say = Callable[[str], None]
# A worker gets this long to leave its consumer group cleanly before it is killed.
WORKER_STOP_TIMEOUT_S = 20.0
SETUP_STEPS: tuple[tuple[str, ...], ...] = (
    ("up",),
    ("services", "migrate"),
    ("schemas", "register"),
    ("connectors", "apply"),
)


def cli(*args: str, state_dir: Path | None = None) -> list[str]:
    """The command line of one ``changefeed`` invocation with this interpreter."""
    root = ["--state-dir", str(state_dir)] if state_dir is not None else []
    return [sys.executable, "-m", "streams", *root, *args]


def run_step(
    args: Sequence[str], say: Say, state_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> None:
    """Run one setup command; raise ``StackError`` with its output if it fails.

    ``env``: variables added to this process's environment for the command.
    """
    say(f"$ changefeed {' '.join(args)}")
    full = {**os.environ, **env} if env else None
    done = subprocess.run(
        cli(*args, state_dir=state_dir), capture_output=True, text=True, check=False, env=full
    )
    if done.returncode != 0:
        msg = f"`changefeed {' '.join(args)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        raise StackError(msg)


@dataclass
class Workers:
    """Worker processes this demo started (and only those are ever stopped)."""

    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _files: list[IO[bytes]] = field(default_factory=list)

    def start(
        self, count: int, state_dir: Path | None = None, env: Mapping[str, str] | None = None
    ) -> list[Path]:
        full = {**os.environ, **env} if env else None
        self.logs.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(1, count + 1):
            path = self.logs / f"demo-worker-{i}.log"
            log = path.open("ab")
            self._files.append(log)
            self.procs.append(
                subprocess.Popen(
                    cli("worker", state_dir=state_dir), stdout=log, stderr=subprocess.STDOUT, env=full
                )
            )
            paths.append(path)
        return paths

    def check_alive(self) -> None:
        for i, proc in enumerate(self.procs, 1):
            if proc.poll() is not None:
                msg = f"demo worker {i} (pid {proc.pid}) exited with {proc.returncode}; see {self.logs}"
                raise StackError(msg)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT_S
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in self._files:
            f.close()
        self.procs.clear()
