"""Fault scenarios kill and pause real processes, so they get a private stack of their own.

It runs beside the shared one (ports shifted by 200 or the next free block, its own state dir and Connect group) and
is stopped and purged at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings, load_settings
from streams.stack import supervisor
from streams.stack.services import StackContext
from tests.stack_fixtures import shifted_settings

# Overridable so two engineers (or CI jobs) can each run a private fault stack on one machine.
SHIFT = int(os.environ.get("CHANGEFEED_FAULTS_PORT_SHIFT", "200"))


@pytest.fixture(scope="session")
def fault_settings() -> Iterator[Settings]:
    root = Path(tempfile.mkdtemp(prefix="changefeed-faults-"))
    root.chmod(0o755)  # the database OS users must reach it
    settings = _private_settings(root / "state")
    try:
        supervisor.up(settings, lambda line: print(f"[fault stack] {line}"))
        yield settings
    finally:
        supervisor.down(settings, lambda line: print(f"[fault stack] {line}"), purge=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def fault_stack(fault_settings: Settings) -> StackContext:
    return supervisor.context_for(fault_settings)
