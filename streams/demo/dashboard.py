"""The demo's dashboard: ``changefeed dashboard`` beside the demo's workers, its URL said first.

Stopped with the workers (kept with them by ``--keep-workers``). When the port already answers
(a dashboard the operator started, or a kept one), that one is used and left alone.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from streams.dashboard.server import DEFAULT_PORT
from streams.demo.steps import cli

STOP_TIMEOUT_S = 10.0


def _taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class DemoDashboard:
    url: str
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, logs: Path, state_dir: Path | None = None, port: int = DEFAULT_PORT) -> DemoDashboard:
        url = f"http://127.0.0.1:{port}/"
        if _taken(port):
            return cls(url)
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "demo-dashboard.log").open("ab") as log:
            proc = subprocess.Popen(
                cli("dashboard", "--port", str(port), state_dir=state_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return cls(url, proc)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
