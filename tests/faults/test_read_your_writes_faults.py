"""Read your own writes while a worker is SIGKILLed, on the private fault stack (the demo project).

Two workers, a steady load, and the demo's insert → token → ``ReadAfter`` pairs (``streams.demo.ryw``,
which also exercises what ``changefeed demo`` runs) through an in-process gRPC service; one worker
is SIGKILLed mid-run and restarted. A wait may end ``TIMEOUT`` while the group rebalances (the
dead member holds its partitions until its session times out), but an ``APPLIED`` read must
always carry the caller's own write.
"""

from __future__ import annotations

from typing import Any

import pytest

from streams.demo.ryw import ReadYourWrites
from tests.faults.pipeline import FaultPipeline, fault_pipeline
from tests.polling import poll

__all__ = ["fault_pipeline"]

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_worker_sigkill_during_waits_never_answers_a_wrong_applied(fault_pipeline: FaultPipeline) -> None:
    fp = fault_pipeline
    s = fp.settings.model_copy(update={"worker": fp.settings.worker.model_copy(update={"app_id": fp.group})})
    numbers: dict[str, Any] = {}
    with fp.workers() as ws:
        first, _second = ws.start(2)
        fp.wait_lag_zero(180, workers=ws)
        load = fp.start_load(rate=100, duration_s=60)
        # The load's key pool is read when it starts: after that it never touches the pairs' rows.
        poll(lambda: load.writes > 0, 30, "the load to start")
        ryw = ReadYourWrites(s, callers=8, limit=1_000_000)
        ryw.start()
        try:
            poll(lambda: ryw.stats.pairs >= 100, 90, "pairs before the kill")
            before = ryw.stats.pairs
            ws.kill(first)  # SIGKILL, mid-run: waits are in flight
            poll(lambda: ryw.stats.pairs >= before + 200, 120, "pairs after the kill", 0.25)
            ws.restart(first)
            after_kill = ryw.stats.pairs
            poll(lambda: ryw.stats.pairs >= after_kill + 200, 120, "pairs after the restart", 0.25)
        finally:
            stats = ryw.stop()
            load.result(120)
        numbers = {
            "pairs": stats.pairs,
            "stale": stats.stale,
            "timeouts": stats.timeouts,
            "superseded": stats.superseded,
            "wait_p99_ms": round(stats.p99_ms),
        }
        print("read-your-writes under a worker SIGKILL:", numbers)
    assert not stats.error, stats.error
    assert stats.stale == 0, stats.stale_keys
    assert stats.pairs - stats.timeouts - stats.superseded >= 400
