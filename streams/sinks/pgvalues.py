"""Binding a column array that mixes Python values with ``PgLiteral`` s (``infinity``, BC, 24:00).

The batch binds one array per column in binary, and psycopg refuses a list whose elements dump
as different PostgreSQL types (``datetime`` and ``str``). Such a list — and only such a list,
found when psycopg's own check fails, so ordinary batches pay nothing — is sent as ``text[]``
of each element's PostgreSQL input text; the statement's ``::type[]`` cast parses it on the
server, exactly as the column would parse a literal.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.abc import AdaptContext, Buffer, DumperKey
from psycopg.adapt import PyFormat
from psycopg.types.array import BaseListDumper, ListBinaryDumper, ListDumper

from streams.cdc.pgtext import PgLiteral, element_text

_TEXT_ARRAY_OID = 1009


def _has_literal(obj: list[Any]) -> bool:
    return any(type(x) is PgLiteral for x in obj)


class _AsTextListDumper(ListBinaryDumper):
    def dump(self, obj: list[Any]) -> Buffer | None:
        return super().dump([element_text(x) for x in obj])


class LiteralAwareListDumper(ListBinaryDumper):
    """psycopg's binary list dumper, plus: a list mixing ``PgLiteral`` s goes as ``text[]``."""

    def get_key(self, obj: list[Any], format: PyFormat) -> DumperKey:
        try:
            return super().get_key(obj, format)
        except psycopg.DataError:
            if not _has_literal(obj):
                raise
            return (self.cls, PgLiteral)

    def upgrade(self, obj: list[Any], format: PyFormat) -> BaseListDumper:
        try:
            return super().upgrade(obj, format)
        except psycopg.DataError:
            if not _has_literal(obj):
                raise
            dumper = _AsTextListDumper(self.cls, self._tx)
            dumper.sub_dumper = self._tx.get_dumper("", PyFormat.BINARY)
            dumper.oid = _TEXT_ARRAY_OID
            return dumper


def register(context: AdaptContext | None = None) -> None:
    """Install the dumper for binary (``%b``) lists; ``%s`` lists keep psycopg's text dumper."""
    adapters = psycopg.adapters if context is None else context.adapters
    adapters.register_dumper(list, LiteralAwareListDumper)
    adapters.register_dumper(list, ListDumper)  # registered last: stays the one ``%s`` picks
