"""Source ≡ sink for one table: chunk digests first, then keys only inside chunks that differ.

Both sides compute, in SQL, one digest per key-range chunk (row count and the sum of 60-bit
row-hash prefixes — order independent, so neither side needs to sort). Only chunks whose
digests differ are fetched key by key; for the first divergent keys the individual columns are
fetched too, so the report names what differs. The algorithm only sees ``Reader`` s, which keeps
it testable without databases.

The two sides are different servers, so each pair of queries runs at once: the source's on a
helper thread (the drivers release the GIL while a server works), the sink's on the caller's.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeVar

Key = tuple[str, ...]
Digest = tuple[int, int]  # (rows, sum of hash prefixes)
T = TypeVar("T")


class Reader(Protocol):
    """One side of a comparison (a source or a sink table)."""

    def chunk_digests(self, size: int) -> dict[int, Digest]: ...

    def key_hashes(self, low: int, high: int) -> dict[Key, str]: ...

    def row_values(self, key: Key) -> tuple[str | None, ...] | None: ...


class Divergence(enum.StrEnum):
    MISSING = "missing in sink"
    EXTRA = "not in source"
    DIFFERENT = "different"
    ENRICHMENT = "enrichment differs from the customer's directory row"


@dataclass(frozen=True)
class DivergentKey:
    key: Key
    kind: Divergence
    columns: tuple[str, ...] = ()  # for DIFFERENT: the value columns that differ; ENRICHMENT: details


@dataclass
class TableResult:
    table: str
    source_rows: int = 0
    sink_rows: int = 0
    chunks: int = 0
    bad_chunks: int = 0
    divergent: int = 0  # all divergent keys found (may exceed len(keys))
    missing: int = 0  # of those, keys the source has and the sink does not
    extra: int = 0  # of those, keys the sink has and the source does not
    keys: list[DivergentKey] = field(default_factory=list)  # at most ``limit``
    derived: tuple[str, ...] = ()  # mapped sink columns whose source column is gone: not compared
    source: str = ""  # the source table (schema.table or database.table)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.divergent == 0 and self.bad_chunks == 0


def chunk_bounds(chunk: int, size: int) -> tuple[int, int]:
    """Inclusive leading-key range of a chunk under truncating division."""
    if chunk > 0:
        return chunk * size, chunk * size + size - 1
    if chunk < 0:
        return chunk * size - size + 1, chunk * size
    return -size + 1, size - 1


def diff_keys(source: dict[Key, str], sink: dict[Key, str]) -> list[tuple[Key, Divergence]]:
    """Divergent keys of one chunk, sorted for stable reports."""
    out = [(k, Divergence.MISSING) for k in source.keys() - sink.keys()]
    out += [(k, Divergence.EXTRA) for k in sink.keys() - source.keys()]
    out += [(k, Divergence.DIFFERENT) for k in source.keys() & sink.keys() if source[k] != sink[k]]
    return sorted(out, key=lambda kv: (tuple(_sortable(p) for p in kv[0]), kv[1].value))


def _sortable(part: str) -> tuple[int, int, str]:
    try:
        return (0, int(part), "")
    except ValueError:
        return (1, 0, part)


def differing_columns(
    names: Sequence[str], source: tuple[str | None, ...] | None, sink: tuple[str | None, ...] | None
) -> tuple[str, ...]:
    if source is None or sink is None:
        return ()
    return tuple(n for n, a, b in zip(names, source, sink, strict=True) if a != b)


def compare_table(
    name: str,
    source: Reader,
    sink: Reader,
    value_names: Sequence[str],
    chunk_size: int = 1000,
    limit: int = 20,
) -> TableResult:
    """Compare one table pair; never raises for divergence, only for I/O errors."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-source") as pool:
        return _compare(name, source, sink, value_names, chunk_size, limit, pool)


def _both(pool: ThreadPoolExecutor, source: Callable[[], T], sink: Callable[[], T]) -> tuple[T, T]:
    """``source()`` on the pool's thread while ``sink()`` runs here; both results (or the error)."""
    pending = pool.submit(source)
    try:
        on_sink = sink()
    finally:
        on_source = pending.result()  # waits even when sink() raised: no query left running
    return on_source, on_sink


def _compare(
    name: str,
    source: Reader,
    sink: Reader,
    value_names: Sequence[str],
    chunk_size: int,
    limit: int,
    pool: ThreadPoolExecutor,
) -> TableResult:
    result = TableResult(name)
    src, dst = _both(pool, partial(source.chunk_digests, chunk_size), partial(sink.chunk_digests, chunk_size))
    result.source_rows = sum(d[0] for d in src.values())
    result.sink_rows = sum(d[0] for d in dst.values())
    chunks = sorted(src.keys() | dst.keys())
    result.chunks = len(chunks)
    for chunk in chunks:
        if src.get(chunk) == dst.get(chunk):
            continue
        result.bad_chunks += 1
        low, high = chunk_bounds(chunk, chunk_size)
        on_source, on_sink = _both(
            pool, partial(source.key_hashes, low, high), partial(sink.key_hashes, low, high)
        )
        for key, kind in diff_keys(on_source, on_sink):
            result.divergent += 1
            result.missing += kind is Divergence.MISSING
            result.extra += kind is Divergence.EXTRA
            if len(result.keys) >= limit:
                continue
            columns: tuple[str, ...] = ()
            if kind is Divergence.DIFFERENT:
                columns = differing_columns(value_names, source.row_values(key), sink.row_values(key))
            result.keys.append(DivergentKey(key, kind, columns))
    return result
