"""Reading a declared sink table by primary key, for ``ReadAfter``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from streams.errors import PermanentError

_KEY_SQL = (
    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
    " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary"
    " ORDER BY array_position(i.indkey, a.attnum)"
)


class ReadError(PermanentError):
    """A read the caller got wrong (unknown table, wrong number of key values)."""


@dataclass(frozen=True)
class SinkTable:
    schema: str
    name: str
    topic: str  # the change topic that feeds it: which source a token must name


class Reader:
    """One connection, serialized by psycopg; primary keys read from the catalog once per table."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], tables: Mapping[str, SinkTable]) -> None:
        self.conn = conn
        self.tables = tables
        self._keys: dict[str, list[str]] = {}

    def table(self, name: str) -> SinkTable:
        found = self.tables.get(name)
        if found is None:
            known = ", ".join(sorted(self.tables)) or "none"
            msg = f"{name!r} is not a declared sink table (declared: {known})"
            raise ReadError(msg)
        return found

    async def _key(self, t: SinkTable) -> list[str]:
        qualified = f"{t.schema}.{t.name}"
        if qualified not in self._keys:
            quoted = sql.Identifier(t.schema, t.name).as_string(self.conn)
            rows = await (await self.conn.execute(_KEY_SQL, [quoted])).fetchall()
            if not rows:
                msg = f"sink table {qualified} does not exist yet (no change applied to it)"
                raise ReadError(msg)
            self._keys[qualified] = [str(r[0]) for r in rows]
        return self._keys[qualified]

    async def rows(self, t: SinkTable, key: Sequence[str]) -> list[str]:
        columns = await self._key(t)
        if len(key) != len(columns):
            msg = (
                f"{t.schema}.{t.name} has a {len(columns)}-column key ({', '.join(columns)}), got {len(key)}"
            )
            raise ReadError(msg)
        # Values go as text of unknown type: PostgreSQL casts each to its key column's type.
        where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
        query = sql.SQL("SELECT to_jsonb(t) FROM {} AS t WHERE {}").format(
            sql.Identifier(t.schema, t.name), where
        )
        try:
            found = await (await self.conn.execute(query, list(key))).fetchall()
        except psycopg.errors.DataError as exc:  # a key value its column cannot hold
            msg = f"key {list(key)!r} does not fit {t.schema}.{t.name}: {exc}"
            raise ReadError(msg) from None
        return [json.dumps(r[0], sort_keys=True, ensure_ascii=False) for r in found]
