"""A fixed-rate schedule for the load generator (pure: the clock and sleep are injected).

Operations are due at ``start + i / rate``: a slow write is caught up by the next ones instead of
lowering the rate for the rest of the run. A stall longer than ``max_burst_s`` (a database
pause, a GC) restarts the schedule rather than firing a burst that would distort latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    rate: float  # operations per second
    max_burst_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    issued: int = 0
    resets: int = 0  # how many times the schedule was abandoned because we fell too far behind
    _start: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            msg = f"rate must be positive, got {self.rate}"
            raise ValueError(msg)

    def due(self) -> float:
        """When the next operation is due (seconds on ``clock``)."""
        if self._start is None:
            self._start = self.clock()
        return self._start + self.issued / self.rate

    def wait(self) -> None:
        """Block until the next operation is due, then count it as issued."""
        now = self.clock()
        due = self.due()
        if now - due > self.max_burst_s:
            self._start = now - self.issued / self.rate
            self.resets += 1
        elif due > now:
            self.sleep(due - now)
        self.issued += 1
