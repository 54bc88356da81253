"""Capture health: what counts as stalled, and the binlog distance arithmetic."""

from __future__ import annotations

from streams.connect.health import (
    INACTIVE_SLOT_LIMIT_BYTES,
    BinlogHealth,
    CaptureHealth,
    ConnectorHealth,
    SlotHealth,
    SourceProbe,
    binlog_behind,
    human_bytes,
)
from streams.connect.models import ConnectorStatus, TaskState

LOGS = [("bin.000001", 1000), ("bin.000002", 500), ("bin.000003", 300)]


def test_binlog_behind_same_file() -> None:
    assert binlog_behind(LOGS, ("bin.000003", 300), ("bin.000003", 120)) == 180


def test_binlog_behind_spans_files() -> None:
    # rest of 000001 (1000-900) + all of 000002 (500) + 000003 up to the server position (200)
    assert binlog_behind(LOGS, ("bin.000003", 200), ("bin.000001", 900)) == 100 + 500 + 200


def test_binlog_behind_is_none_when_the_file_was_purged() -> None:
    assert binlog_behind(LOGS, ("bin.000003", 200), ("bin.000000", 5)) is None


def test_failed_task_is_a_problem_with_its_first_trace_line() -> None:
    status = ConnectorStatus(
        "big", "RUNNING", "w", "source", "",
        (TaskState(0, "FAILED", "w", "org.apache.kafka.connect.errors.ConnectException: boom\n\tat x\n"
                   "Caused by: org.apache.kafka.common.errors.RecordTooLargeException: too big"),),
    )  # fmt: skip
    health = CaptureHealth(connectors=[ConnectorHealth.of(status)])
    (problem,) = health.problems()
    assert "big" in problem
    assert "ConnectException: boom" in problem
    assert "(permanent)" in problem


def test_unreachable_source_and_inactive_slot_are_problems_paused_is_a_warning() -> None:
    paused = ConnectorHealth("p", "PAUSED", ((0, "PAUSED"),))
    health = CaptureHealth(
        connectors=[paused],
        sources=[SourceProbe("source_mariadb", "h:1/orders", "Connection refused")],
        slots=[
            SlotHealth("idle", False, "reserved", INACTIVE_SLOT_LIMIT_BYTES + 1, 5),
            SlotHealth("busy", True, "reserved", 10 * INACTIVE_SLOT_LIMIT_BYTES, 5),
            SlotHealth("gone", False, "lost", 0, 0),
        ],
    )
    problems = health.problems()
    assert len(problems) == 3
    assert "unreachable" in problems[0]
    assert "idle" in problems[1]
    assert "gone" in problems[2]
    assert health.warnings() == ["connector p is PAUSED (tasks: 0=PAUSED)"]


def test_binlog_far_behind_or_purged_is_a_problem() -> None:
    ok = BinlogHealth("o", "b.2", 10, "b.2", 5, 5)
    purged = BinlogHealth("o", "b.2", 10, "b.1", 5, None)
    far = BinlogHealth("o", "b.9", 10, "b.1", 5, 10**9)
    assert not ok.problem
    assert "purged" in purged.problem
    assert "behind" in far.problem


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(20 * 1024 * 1024) == "20.0 MiB"
