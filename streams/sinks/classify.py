"""Sort database failures into retry-later and poison, by SQLSTATE class — never by message text.

no SQLSTATE (connection refused/lost)          → SinkUnavailableError (transient)
08 connection, 40 rollback (serialization 40001,
   deadlock 40P01), 53 resources, 55 lock not
   available, 57 shutdown/cancel, 58 system     → SinkUnavailableError (transient)
42 / 3F undefined table/column/schema, grants  → SinkSchemaError (transient: fix, then retry)
22 data exception, 23 integrity violation      → the data of a row: isolate it (SinkRowError)
anything else                                  → SinkUnavailableError: never dead-letter on doubt
"""

from __future__ import annotations

import enum

import psycopg

from streams.errors import SinkSchemaError, SinkUnavailableError

_ROW = frozenset({"22", "23"})
_SCHEMA = frozenset({"42", "3F"})


class Failure(enum.Enum):
    TRANSIENT = "transient"
    SCHEMA = "schema"
    ROW = "row"


def classify(exc: psycopg.Error) -> Failure:
    state = exc.sqlstate or ""
    if state[:2] in _ROW:
        return Failure.ROW
    if state[:2] in _SCHEMA:
        return Failure.SCHEMA
    return Failure.TRANSIENT


def unavailable(exc: psycopg.Error, what: str) -> SinkUnavailableError:
    """The transient error to raise for ``exc`` (schema problems get their own subclass)."""
    text = f"sink {what} failed: {type(exc).__name__} (SQLSTATE {exc.sqlstate}): {exc}"
    if classify(exc) is Failure.SCHEMA:
        return SinkSchemaError(text)
    return SinkUnavailableError(text)
