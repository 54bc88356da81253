"""The demo's dashboard: a port that already answers is reused, not fought over."""

from __future__ import annotations

import socket
from pathlib import Path

from streams.demo.dashboard import DemoDashboard


def test_a_running_dashboard_is_reused_and_left_alone(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        board = DemoDashboard.start(tmp_path, port=port)
        assert board.url == f"http://127.0.0.1:{port}/"
        assert board.proc is None
        board.stop()  # nothing of ours to stop
    assert not (tmp_path / "demo-dashboard.log").exists()
