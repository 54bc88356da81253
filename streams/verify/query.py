"""The comparison's SQL, built per dialect from the ``normalize`` templates.

PostgreSQL statements are ``psycopg.sql`` compositions (identifiers via ``sql.Identifier``);
MariaDB statements are text with identifiers quoted by ``mysql_ident``. Values (chunk size,
key bounds, keys) are always bound parameters.
"""

from __future__ import annotations

from psycopg import sql

from streams.verify.mysql_ident import mysql_ident
from streams.verify.normalize import (
    ColumnKind,
    Dialect,
    Family,
    canonical_template,
    hash_int_template,
    row_hash_template,
)
from streams.verify.spec import LIVE_COLUMN, Side

Query = sql.Composed | sql.SQL | str


def _fmt(dialect: Dialect, template: str, *args: Query, **kwargs: Query) -> Query:
    if dialect is Dialect.POSTGRES:
        return sql.SQL(template).format(*args, **kwargs)
    return template.format(*args, **kwargs)


def _ident(dialect: Dialect, *names: str) -> Query:
    if dialect is Dialect.POSTGRES:
        return sql.SQL("{}").format(sql.Identifier(*names))
    return mysql_ident(*names)


def _join(dialect: Dialect, parts: list[Query], sep: str = ", ") -> Query:
    if dialect is Dialect.POSTGRES:
        return sql.SQL(sep).join([p for p in parts if not isinstance(p, str)])
    return sep.join(str(p) for p in parts)


def canonical(side: Side, column: str, kind: ColumnKind) -> Query:
    return _fmt(side.dialect, canonical_template(side.dialect, kind), col=_ident(side.dialect, column))


def row_hash(side: Side, key_kinds: tuple[ColumnKind, ...], value_kinds: tuple[ColumnKind, ...]) -> Query:
    """Hash of key and value columns: a key change alone also changes the row's hash."""
    cols = [*zip(side.key, key_kinds, strict=True), *zip(side.values, value_kinds, strict=True)]
    parts = [canonical(side, c, k) for c, k in cols]
    return _fmt(side.dialect, row_hash_template(side.dialect, len(parts)), *parts)


def _where(side: Side, extra: list[Query]) -> Query:
    conds = list(extra)
    if side.live_only:
        conds.append(_fmt(side.dialect, "{} IS NULL", _ident(side.dialect, LIVE_COLUMN)))
    if not conds:
        return _fmt(side.dialect, "")
    return _fmt(side.dialect, " WHERE {}", _join(side.dialect, conds, " AND "))


def _chunk(side: Side, chunkable: bool) -> Query:
    """Chunk number of a row: its leading key divided by the bound chunk size (truncating)."""
    if not chunkable:
        return _fmt(side.dialect, "0 * %s")
    op = "({} / %s)" if side.dialect is Dialect.POSTGRES else "({} DIV %s)"
    return _fmt(side.dialect, op, _ident(side.dialect, side.key[0]))


def chunk_digests(
    side: Side, key_kinds: tuple[ColumnKind, ...], value_kinds: tuple[ColumnKind, ...], chunkable: bool
) -> Query:
    """Params: chunk size. Rows: (chunk, row count, sum of 60-bit row-hash prefixes)."""
    h = row_hash(side, key_kinds, value_kinds)
    return _fmt(
        side.dialect,
        "SELECT chunk, count(*), sum({hint}) FROM (SELECT {chunk} AS chunk, {h} AS h FROM {t}{where}) s"
        " GROUP BY chunk",
        hint=_fmt(side.dialect, hash_int_template(side.dialect), h=_fmt(side.dialect, "h")),
        chunk=_chunk(side, chunkable),
        h=h,
        t=_ident(side.dialect, side.schema, side.table),
        where=_where(side, []),
    )


def key_hashes(
    side: Side, key_kinds: tuple[ColumnKind, ...], value_kinds: tuple[ColumnKind, ...], chunkable: bool
) -> Query:
    """Params: (low, high) of the leading key, inclusive, when chunkable. Rows: (*key text, hash)."""
    keys = [canonical(side, c, k) for c, k in zip(side.key, key_kinds, strict=True)]
    bounds = (
        [_fmt(side.dialect, "{} BETWEEN %s AND %s", _ident(side.dialect, side.key[0]))] if chunkable else []
    )
    return _fmt(
        side.dialect,
        "SELECT {keys}, {h} FROM {t}{where}",
        keys=_join(side.dialect, keys),
        h=row_hash(side, key_kinds, value_kinds),
        t=_ident(side.dialect, side.schema, side.table),
        where=_where(side, bounds),
    )


def row_values(side: Side, key_kinds: tuple[ColumnKind, ...], value_kinds: tuple[ColumnKind, ...]) -> Query:
    """Params: the key's canonical texts. Row: every value column's canonical text."""
    match = [
        _fmt(side.dialect, "{} = %s", canonical(side, c, k)) for c, k in zip(side.key, key_kinds, strict=True)
    ]
    values = [canonical(side, c, k) for c, k in zip(side.values, value_kinds, strict=True)]
    return _fmt(
        side.dialect,
        "SELECT {values} FROM {t}{where}",
        values=_join(side.dialect, values) if values else _fmt(side.dialect, "1"),
        t=_ident(side.dialect, side.schema, side.table),
        where=_where(side, match),
    )


def hash_parts(
    side: Side, key_kinds: tuple[ColumnKind, ...], value_kinds: tuple[ColumnKind, ...], bounded: bool
) -> Query:
    """Params: (low, high) of the leading key when ``bounded``. Rows: the key texts, the md5 of the
    other columns' ``row_hash_template`` parts joined by ``|``, then each JSON column's canonical
    text (which ``readers.SqlReader`` canonicalizes and hashes in Python). For tables hashed in
    Python (``normalize.needs_python``): only their JSON crosses the wire, not every column."""
    cols = [*zip(side.key, key_kinds, strict=True), *zip(side.values, value_kinds, strict=True)]
    plain = [canonical(side, c, k) for c, k in cols if k.family is not Family.JSON]
    bounds = (
        [_fmt(side.dialect, "{} BETWEEN %s AND %s", _ident(side.dialect, side.key[0]))] if bounded else []
    )
    return _fmt(
        side.dialect,
        "SELECT {cols} FROM {t}{where}",
        cols=_join(
            side.dialect,
            [
                *(canonical(side, c, k) for c, k in cols[: len(side.key)]),
                _fmt(side.dialect, row_hash_template(side.dialect, len(plain)), *plain),
                *(canonical(side, c, k) for c, k in cols if k.family is Family.JSON),
            ],
        ),
        t=_ident(side.dialect, side.schema, side.table),
        where=_where(side, bounds),
    )
