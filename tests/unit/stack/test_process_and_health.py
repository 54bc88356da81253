import base64
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from streams.errors import StackError
from streams.stack import health, process, services
from streams.stack.jvm import manifest_dir, manifest_stamp


def test_read_running_trusts_only_pids_with_our_marker(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    assert process.read_running(pid_file, "anything") is None
    pid_file.write_text(f"{os.getpid()}\n")
    # our own pytest process does not carry this marker in its command line
    assert process.read_running(pid_file, "no-such-marker-in-cmdline") is None
    assert process.read_running(pid_file, "pytest") is not None


def test_spawn_then_stop_kills_the_process_group(tmp_path: Path) -> None:
    marker = str(tmp_path)
    pid_file, log = tmp_path / "sleeper.pid", tmp_path / "sleeper.log"
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ar' + 'med', flush=True); time.sleep(600)"
    )
    pid = process.spawn([sys.executable, "-c", script, marker], pid_file=pid_file, log_file=log).pid
    deadline = time.monotonic() + 10
    while "\narmed" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until SIGTERM is ignored, or the test would race the handler
    running = process.read_running(pid_file, marker)
    assert running is not None
    assert running.pid == pid
    import signal

    graceful = process.stop(running, signal.SIGTERM, 0.5, marker, pid_file)
    assert graceful is False  # it ignored SIGTERM, so it was killed
    assert process.read_running(pid_file, marker) is None
    assert "starting:" in log.read_text()


def test_rss_counts_a_live_process() -> None:
    rss = process.rss_mb(os.getpid())
    assert rss is not None
    assert rss > 1


def test_connect_plugin_classes_parses_the_rest_answer() -> None:
    payload = [
        {"class": "a.B", "type": "source", "version": "1"},
        {"class": "c.D", "type": "converter"},
        "junk",
    ]
    assert health.connect_plugin_classes(payload) == {"a.B", "c.D"}
    assert health.connect_plugin_classes({"error_code": 500}) == set()


def test_tcp_probe_is_false_on_a_closed_port() -> None:
    assert health.tcp_open("127.0.0.1", 1) is False


def test_manifest_stamp_changes_with_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "pom.xml").write_text("<a/>")
    first = manifest_stamp(tmp_path)
    (tmp_path / "pom.xml").write_text("<b/>")
    assert manifest_stamp(tmp_path) != first
    assert len(manifest_stamp(manifest_dir())) == 64


def test_the_cli_answers_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streams", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    for command in ("up", "down", "status", "logs"):
        assert command in done.stdout


def test_kafka_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # uuid bytes 0xf8... encode to "-..." in urlsafe base64: the first draw must be rejected
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(services.uuid, "uuid4", lambda: next(draws))
    cluster_id = services.new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(b"\x01" * 16).decode().rstrip("=")
    monkeypatch.undo()
    assert all(not services.new_cluster_id().startswith("-") for _ in range(2000))


def test_a_failed_preparation_step_reports_the_end_of_its_log(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    script = "import sys; print('line one'); print('the actual cause'); sys.exit(3)"
    with pytest.raises(StackError, match=r"exit 3.*\n(.*\n)*  \| the actual cause"):
        process.run_once([sys.executable, "-c", script], log_file=log)
