"""Handlers per CloudEvents ``type``, each run idempotently against its own PostgreSQL database.

    def register(handlers: Handlers) -> None:
        @handlers.on("dev.changefeed.customers.CustomerEmailChanged")
        async def notify(tx: psycopg.AsyncConnection, event: CustomerEmailChanged) -> None:
            await tx.execute("INSERT INTO notifications ...", (...))

A handler receives the typed record and a connection inside an open transaction, whose
``search_path`` is ``[bus] handler_schema`` (the ledger's schema: unqualified names land there).
Before calling it, the runner inserts ``(handler, event id)`` into the processed-event ledger of that same
transaction: the ledger row and the handler's effect commit together or not at all, and an
event seen again (a redelivery after a crash, a replay from offset 0) finds its row and is
counted as a duplicate instead of running twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from streams.bus.records import DomainEventRecord
from streams.errors import ConfigError
from streams.project.plugins import call_registers

HandlerFn = Callable[[psycopg.AsyncConnection[Any], Any], Awaitable[None]]
SetupFn = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Registered:
    name: str  # the ledger's key with the event id: renaming a handler re-runs every event
    event_type: str
    fn: HandlerFn


class Handlers:
    """The handlers of one worker, by event type."""

    def __init__(self) -> None:
        self._by_type: dict[str, list[Registered]] = {}
        self.setups: list[SetupFn] = []

    def setup(self, fn: SetupFn) -> SetupFn:
        """Run ``fn(conn)`` in a transaction on each new connection (create the effect tables)."""
        self.setups.append(fn)
        return fn

    def on(self, event_type: str, name: str | None = None) -> Callable[[HandlerFn], HandlerFn]:
        """Register ``fn`` for events of ``event_type`` (the Avro record's full name)."""

        def add(fn: HandlerFn) -> HandlerFn:
            key = name or f"{fn.__module__}.{fn.__qualname__}"
            if any(r.name == key for r in self.all()):
                msg = f"two bus handlers are named {key!r}; pass name= to tell them apart"
                raise ConfigError(msg)
            self._by_type.setdefault(event_type, []).append(Registered(key, event_type, fn))
            return fn

        return add

    def for_event(self, event: DomainEventRecord) -> list[Registered]:
        return self._by_type.get(event.type, [])

    def all(self) -> list[Registered]:
        return [r for regs in self._by_type.values() for r in regs]

    def __bool__(self) -> bool:
        return bool(self._by_type)


def load_handlers(modules: Iterable[str], into: Handlers | None = None) -> Handlers:
    """Import each module and call its ``register(handlers)``."""
    return call_registers(modules, into or Handlers(), "bus handler", "handlers")
