"""Retry one event's work with doubling delays, without acking it meanwhile.

A transient failure (a bus or database briefly down) must never skip an event: the agent keeps
retrying the same event, so its offset is not acked and nothing behind it on the partition is
committed. If the worker stops mid-retry the agent is cancelled and the event stays unacked
(the agents iterate ``noack`` streams), so the next owner of the partition redelivers it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Backoff:
    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.retries = 0

    async def retry(
        self, what: str, call: Callable[[], Awaitable[T]], transient: Callable[[BaseException], bool]
    ) -> T:
        """``call()`` until it succeeds; a non-transient error is raised to the caller (poison)."""
        delay = self.initial_s
        while True:
            try:
                return await call()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not transient(exc):
                    raise
                reason = f"{type(exc).__name__}: {exc}"
            self.retries += 1
            log.warning("%s failed, retrying in %.1f s: %s", what, delay, reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_s)
