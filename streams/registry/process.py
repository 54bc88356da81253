"""Run ``python -m streams.registry`` as a child process: for integration tests and benchmarks.

Configuration goes through ``CHANGEFEED_*`` environment variables of the child, the same way the
local stack configures it; readiness is ``GET /subjects`` answering 200 (replay is done by then).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from streams.errors import StackError

# A cold start imports avro/aiokafka and replays the topic: seconds, not minutes.
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RegistryProcess:
    def __init__(
        self, topic: str, bootstrap: str, log_path: Path, base_env: Mapping[str, str], port: int | None = None
    ) -> None:
        """``base_env`` is the environment the child inherits (the caller's edge passes os.environ)."""
        self.base_env = dict(base_env)
        self.topic = topic
        self.bootstrap = bootstrap
        self.port = port or free_port()
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RegistryProcess:
        host, _, kafka_port = self.bootstrap.rpartition(":")
        env = {
            **self.base_env,
            "CHANGEFEED_REGISTRY__PORT": str(self.port),
            "CHANGEFEED_REGISTRY__TOPIC": self.topic,
            "CHANGEFEED_KAFKA__HOST": host,
            "CHANGEFEED_KAFKA__PORT": kafka_port,
        }
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "streams.registry"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                msg = f"registry exited with {self._proc.returncode}; see {self.log_path}"
                raise StackError(msg)
            try:
                if httpx.get(f"{self.url}/subjects", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # poll interval of the readiness loop, bounded by the deadline
        msg = f"registry not ready after {READY_TIMEOUT_S} s; see {self.log_path}"
        raise StackError(msg)

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing gets flushed or closed cleanly."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
