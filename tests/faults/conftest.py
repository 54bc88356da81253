"""Fault scenarios kill and pause real processes, so they get a private stack of their own.

It runs beside the shared one (ports shifted by CHANGEFEED_FAULTS_PORT_SHIFT, else by the first
free block from 200 on; its own state dir and Connect group) and is stopped and purged at the
end of the session, so two sessions can each run one on the same machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings, load_settings
from streams.stack import supervisor
from streams.stack.services import StackContext
from tests.stack_fixtures import shifted_settings

SHIFTS = range(200, 400, 20)
KEPT_LOGS = Path(__file__).resolve().parents[2] / "reports" / "fault-logs"


def _ports(settings: Settings) -> list[int]:
    s = settings
    return [s.kafka.port, s.kafka.controller_port, s.connect.port, s.registry.port,
            s.source_postgres.port, s.sink_postgres.port, s.source_mariadb.port]  # fmt: skip


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _private_settings(state: Path) -> Settings:
    base = load_settings()
    forced = os.environ.get("CHANGEFEED_FAULTS_PORT_SHIFT")
    for shift in [int(forced)] if forced else SHIFTS:
        candidate = shifted_settings(base, state, shift, f"changefeed-faults-{shift}")
        if all(_free(port) for port in _ports(candidate)):
            return candidate
    pytest.fail(f"no free port block for a private fault stack (shift {forced or list(SHIFTS)})")


def _keep_logs(settings: Settings) -> None:
    """Copy the worker logs out before the purge: reports/fault-logs/<UTC time>/."""
    workers = settings.stack.state_dir / "logs" / "workers"
    if workers.is_dir():
        dest = KEPT_LOGS / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        shutil.copytree(workers, dest, dirs_exist_ok=True)
        print(f"[fault stack] worker logs kept in {dest}")


@pytest.fixture(scope="session")
def fault_settings() -> Iterator[Settings]:
    root = Path(tempfile.mkdtemp(prefix="changefeed-faults-"))
    root.chmod(0o755)  # the database OS users must reach it
    settings = _private_settings(root / "state")
    try:
        supervisor.up(settings, lambda line: print(f"[fault stack] {line}"))
        yield settings
    finally:
        _keep_logs(settings)
        supervisor.down(settings, lambda line: print(f"[fault stack] {line}"), purge=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def fault_stack(fault_settings: Settings) -> StackContext:
    return supervisor.context_for(fault_settings)
