"""``Reader`` s over real databases: PostgreSQL (psycopg) and MariaDB (pymysql).

Each query runs in its own short read so a long comparison never holds a snapshot (and on the
source, never holds back vacuum or the binlog purge).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pymysql

from streams.verify import query
from streams.verify.compare import Digest, Key
from streams.verify.mysql_ident import mysql_ident
from streams.verify.normalize import (
    Dialect,
    Family,
    canonical_json,
    combined_hash,
    hash_int,
    needs_python,
    part_hash,
)
from streams.verify.spec import Side, TableSpec


def _chunk_of(key: str, size: int) -> int:
    """Truncating division, as ``/`` on integers in PostgreSQL and ``DIV`` in MariaDB."""
    n = int(key)
    return n // size if n >= 0 else -(-n // size)


class SqlReader:
    """Runs the ``query`` module's statements for one side of a ``TableSpec``."""

    def __init__(
        self, conn: psycopg.Connection[Any] | pymysql.Connection[Any], spec: TableSpec, side: Side
    ) -> None:
        self.conn, self.spec, self.side = conn, spec, side
        kinds = (*spec.key_kinds, *spec.value_kinds)
        # Both sides of such a table hash in Python, so their digests stay comparable.
        self.in_python = needs_python(spec.source.dialect, kinds)
        self._json = [k.family is Family.JSON for k in kinds]

    def _canonical(self, row: tuple[Any, ...], offset: int = 0) -> list[str | None]:
        out: list[str | None] = [None if v is None else str(v) for v in row]
        for i, v in enumerate(out):
            if self._json[offset + i]:
                out[i] = canonical_json(v)
        return out

    def _python_rows(self, bounds: list[int] | None) -> dict[tuple[str, ...], str]:
        """Key → row hash: the non-JSON columns hashed in SQL (``query.hash_parts``), combined here
        with the hashes of the JSON columns' canonical text. Both sides of the table hash alike."""
        q = query.hash_parts(self.side, self.spec.key_kinds, self.spec.value_kinds, bounds is not None)
        n = len(self.side.key)
        found = {}
        for row in self._rows(q, bounds or []):
            parts = [str(row[n])]
            parts += [part_hash(canonical_json(None if v is None else str(v))) for v in row[n + 1 :]]
            found[tuple(str(p) for p in row[:n])] = combined_hash(parts)
        return found

    def _rows(self, q: query.Query, params: list[Any]) -> list[tuple[Any, ...]]:
        if isinstance(self.conn, psycopg.Connection):
            assert not isinstance(q, str)
            rows: list[tuple[Any, ...]] = self.conn.execute(q, params).fetchall()
            self.conn.rollback()
            return rows
        assert isinstance(q, str)
        with self.conn.cursor() as cur:
            cur.execute(q, params)
            found = list(cur.fetchall())
        self.conn.rollback()
        return found

    def chunk_digests(self, size: int) -> dict[int, Digest]:
        if self.in_python:
            digests: dict[int, Digest] = {}
            for key, h in self._python_rows(None).items():
                chunk = _chunk_of(key[0], size) if self.spec.chunkable else 0
                rows, total = digests.get(chunk, (0, 0))
                digests[chunk] = (rows + 1, total + hash_int(h))
            return digests
        q = query.chunk_digests(self.side, self.spec.key_kinds, self.spec.value_kinds, self.spec.chunkable)
        return {int(c): (int(n), int(s)) for c, n, s in self._rows(q, [size])}

    def key_hashes(self, low: int, high: int) -> dict[Key, str]:
        if self.in_python:
            return self._python_rows([low, high] if self.spec.chunkable else None)
        q = query.key_hashes(self.side, self.spec.key_kinds, self.spec.value_kinds, self.spec.chunkable)
        rows = self._rows(q, [low, high] if self.spec.chunkable else [])
        return {tuple(str(p) for p in r[:-1]): str(r[-1]) for r in rows}

    def row_values(self, key: Key) -> tuple[str | None, ...] | None:
        q = query.row_values(self.side, self.spec.key_kinds, self.spec.value_kinds)
        rows = self._rows(q, list(key))
        if not rows:
            return None
        values = rows[0][: len(self.side.values)]
        if self.in_python:
            return tuple(self._canonical(values, offset=len(self.side.key)))
        return tuple(None if v is None else str(v) for v in values)


def source_columns(
    conn: psycopg.Connection[Any] | pymysql.Connection[Any], dialect: Dialect, schema: str, table: str
) -> set[str]:
    """Column names of a source table (empty if the table does not exist)."""
    q = "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
    if dialect is Dialect.POSTGRES:
        assert isinstance(conn, psycopg.Connection)
        found = {str(r[0]) for r in conn.execute(q, [schema, table])}
        conn.rollback()
        return found
    assert isinstance(conn, pymysql.Connection)
    mysql_ident(schema, table)  # refuse names we could not quote later
    with conn.cursor() as cur:
        cur.execute(q, [schema, table])
        return {str(r[0]) for r in cur.fetchall()}
