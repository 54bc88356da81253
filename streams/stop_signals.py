"""The worker process's stop signals: the first starts a bounded stop, a second exits at once.

Faust's worker (``mode``) stops its services on SIGTERM/SIGINT and ignores any further signal,
so one stop step that never returns kept a worker alive until SIGKILL. Here the first signal
also arms a watchdog thread: if the process is still there ``timeout_s`` later it writes every
thread's and task's stack to stderr (the diagnosis) and exits. A thread, not a task: it fires
even when the event loop itself is stuck. Exiting without finishing is safe for the data: the
sink transaction holds the offsets, and Kafka's are only committed after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)
# A stop that ran out of time (as coreutils' ``timeout``); a second signal exits 128 + signum.
STOP_TIMEOUT_EXIT_CODE = 124


class StopGuard:
    """Counts stop signals; the first arms the watchdog, the second ends the process."""

    def __init__(self, timeout_s: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.timeout_s, self.loop = timeout_s, loop
        self.signals = 0
        self.watchdog: threading.Timer | None = None

    def received(self, signum: int) -> bool:
        """Note one SIGTERM/SIGINT; ``True``: the first (start the orderly stop)."""
        self.signals += 1
        if self.signals > 1:
            log.warning("second stop signal (%s): exiting now", signal.Signals(signum).name)
            flush_streams()
            os._exit(128 + signum)
        log.info("stopping; the process exits within %g s (a second signal exits now)", self.timeout_s)
        self.watchdog = threading.Timer(self.timeout_s, self.expired)
        self.watchdog.daemon = True
        self.watchdog.start()
        return True

    def expired(self) -> None:
        log.error("the stop did not finish within %g s; exiting (stacks follow on stderr)", self.timeout_s)
        dump_stacks(self.loop)
        flush_streams()
        os._exit(STOP_TIMEOUT_EXIT_CODE)


def dump_stacks(loop: asyncio.AbstractEventLoop | None) -> None:
    """Every thread's stack, then every asyncio task's (where a stuck stop awaits)."""
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    if loop is None:
        return
    try:  # read from another thread, for a diagnosis only: a task set changing under us is fine
        tasks = list(asyncio.all_tasks(loop))
    except RuntimeError:
        return
    for task in tasks:
        try:
            task.print_stack(limit=12, file=sys.stderr)
        except Exception:  # noqa: S112  # one task's stack is not worth failing the others
            continue


def flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream: nothing to save
            stream.flush()


def bounded_worker(app: Any, loglevel: str, timeout_s: float) -> Any:
    """A ``faust.Worker`` whose stop is bounded by ``timeout_s`` (see the module docstring)."""
    import faust

    class BoundedWorker(faust.Worker):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            self.stop_guard = StopGuard(timeout_s, self.loop)

        def _on_sigterm(self) -> None:
            if self.stop_guard.received(signal.SIGTERM):
                super()._on_sigterm()

        def _on_sigint(self) -> None:
            if self.stop_guard.received(signal.SIGINT):
                super()._on_sigint()

    return BoundedWorker(app, loglevel=loglevel, quiet=True, daemon=True)
