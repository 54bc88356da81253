"""User modules named in settings: import each and call its ``register(<target>)``.

Transforms (``[project] transforms``) and event-bus handlers (``[bus] handler_modules``) are both
plugged in this way; a module that does not import or has no ``register`` fails the start with a
``ConfigError`` naming it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TypeVar

from streams.errors import ConfigError

T = TypeVar("T")


def call_registers(modules: Iterable[str], target: T, kind: str, arg: str, hint: str = "") -> T:
    """Import each module and call ``register(target)``; ``kind``/``arg``/``hint`` word the errors."""
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            msg = f"{kind} module {name!r} does not import ({exc}){hint}"
            raise ConfigError(msg) from exc
        register = getattr(module, "register", None)
        if not callable(register):
            msg = f"{kind} module {name!r} has no register({arg}) function"
            raise ConfigError(msg)
        register(target)
    return target
