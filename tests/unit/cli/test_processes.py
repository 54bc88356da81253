"""``worker --processes N``: the supervisor forwards stops and stops the group when one child ends."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from streams.cli.processes import child_env, supervise

# A child that writes a marker when it gets SIGINT/SIGTERM, then exits 0 (a clean worker stop).
CHILD = """
import signal, sys, time, pathlib
mark = pathlib.Path(sys.argv[1])
def stop(signum, frame):
    mark.write_text(str(signum))
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
pathlib.Path(sys.argv[1] + ".up").write_text("")
while True:
    time.sleep(0.05)
"""


def _wait(paths: list[Path], deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while not all(p.exists() for p in paths):
        assert time.monotonic() < end, f"not all of {paths} appeared"
        time.sleep(0.02)


def test_child_env_gives_each_child_its_own_metrics_port() -> None:
    assert [child_env({}, i, 9108)["CHANGEFEED_WORKER__METRICS_PORT"] for i in range(3)] == [
        "9108",
        "9109",
        "9110",
    ]
    assert "CHANGEFEED_WORKER__METRICS_PORT" not in child_env({}, 1, 0)


def test_sigint_reaches_every_child_and_the_group_exits_cleanly(tmp_path: Path) -> None:
    marks = [tmp_path / f"c{i}" for i in range(3)]
    commands = [[sys.executable, "-c", CHILD, str(m)] for m in marks]

    def interrupt() -> None:
        _wait([Path(f"{m}.up") for m in marks])
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    assert supervise(commands, [dict(os.environ)] * 3) == 0
    assert [m.read_text() for m in marks] == [str(int(signal.SIGINT))] * 3


def test_a_child_that_exits_alone_stops_the_others_with_its_status(tmp_path: Path) -> None:
    marks = [tmp_path / f"c{i}" for i in range(2)]
    commands = [[sys.executable, "-c", CHILD, str(m)] for m in marks]
    # Exits once the others are up (their stop handlers installed): no race with their start.
    crash = (
        "import os, sys, time\n"
        "while not all(os.path.exists(p) for p in sys.argv[1:]): time.sleep(0.02)\n"
        "sys.exit(3)"
    )
    commands.append([sys.executable, "-c", crash, *(f"{m}.up" for m in marks)])
    assert supervise(commands, [dict(os.environ)] * 3) == 3
    assert [m.read_text() for m in marks] == [str(int(signal.SIGTERM))] * 2
