"""A second, private stack: cold start from an empty state dir, `up` twice, `down` leaves nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.stack import process, supervisor
from streams.stack.services import StackContext
from tests.stack_fixtures import shifted_settings

pytestmark = pytest.mark.slow
SHIFT = 100  # ports beside the session stack's, so both run at once


def _private_settings(base: Settings, state: Path) -> Settings:
    return shifted_settings(base, state, SHIFT, "changefeed-lifecycle")


def _our_processes(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.fixture
def tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp dir the database OS users can traverse (pytest's own is 0700 when run as root)."""
    path = Path(tempfile.mkdtemp(prefix="changefeed-lifecycle-"))
    path.chmod(0o755)
    return path


def test_cold_up_then_down_leaves_no_process(stack: StackContext, settings: Settings, tmp_path: Path) -> None:
    private = _private_settings(settings, tmp_path / "state")
    lines: list[str] = []
    try:
        rows = supervisor.up(private, lines.append)
        assert all(row.state == "ready" for row in rows), rows
        pids = {row.name: row.pid for row in rows}
        supervisor.up(private, lines.append)
        assert any("already running" in line for line in lines)
        assert {row.name: row.pid for row in supervisor.status(private)} == pids
    finally:
        supervisor.down(private, lines.append)
    assert all(row.state == "stopped" for row in supervisor.status(private))
    assert _our_processes(str((tmp_path / "state").resolve())) == []
    assert not list((tmp_path / "state" / "run").glob("*.pid"))
    supervisor.down(private, lines.append)  # idempotent
    supervisor.down(private, lines.append, purge=True)
    assert not (tmp_path / "state").exists()
    assert process.read_running(tmp_path / "none.pid", "x") is None
