"""Comparable source positions: the version every sink write is guarded by.

Raw PostgreSQL ``source.lsn`` is not monotonic across interleaved transactions (materialize#5668),
so a PostgreSQL position is ``(last commit LSN, LSN, txId)`` taken from ``source.sequence``: events
are emitted in commit order, and every event of a transaction carries the commit LSN of the
transaction before it. MariaDB/MySQL positions are ``(GTID sequence, binlog file index, binlog
position, row)``: the GTID sequence survives a primary switch, the binlog coordinates order events
within one transaction. Only one GTID domain is assumed (the domain is not part of the order).

Byte encoding (stored as ``bytea`` in ``_cf_position`` so SQL can compare with ``<``)::

    byte 0      format/kind tag: 0x01 PostgreSQL, 0x02 MariaDB/MySQL
    bytes 1..   each part as an unsigned 64-bit big-endian integer (missing parts encode as 0)

PostgreSQL compares ``bytea`` bytewise (memcmp, then length); every part has a fixed width, so the
byte order equals the tuple order. Positions of different kinds are never meant to be compared;
the tag keeps such a comparison deterministic instead of meaningless.
"""

from __future__ import annotations

import enum
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.errors import EnvelopeError

_PART = struct.Struct(">Q")
_MAX = 2**64 - 1


class SourceKind(enum.IntEnum):
    """The byte-0 tag of an encoded position."""

    POSTGRES = 1
    MYSQL = 2  # MariaDB and MySQL share the binlog coordinate model


@dataclass(frozen=True, order=True)
class SourcePosition:
    """A totally ordered point in a source's change stream."""

    kind: SourceKind
    parts: tuple[int, ...]

    def __post_init__(self) -> None:
        if any(not 0 <= p <= _MAX for p in self.parts):
            msg = f"position parts must be unsigned 64-bit integers: {self.parts}"
            raise ValueError(msg)

    def to_bytes(self) -> bytes:
        return bytes([self.kind]) + b"".join(_PART.pack(p) for p in self.parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> SourcePosition:
        if not data or (len(data) - 1) % _PART.size:
            msg = f"not an encoded source position: {data!r}"
            raise ValueError(msg)
        parts = tuple(_PART.unpack_from(data, 1 + i * _PART.size)[0] for i in range(len(data) // 8))
        return cls(SourceKind(data[0]), parts)

    def __str__(self) -> str:
        return f"{self.kind.name.lower()}:" + "/".join(str(p) for p in self.parts)


def _int(value: Any, what: str) -> int:
    """Debezium sends LSNs and ids as numbers or decimal strings; null means 'not yet known'."""
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        msg = f"{what} is not an integer: {value!r}"
        raise EnvelopeError(msg) from None


def postgres_position(source: Mapping[str, Any]) -> SourcePosition:
    """Order by ``source.sequence`` (never raw ``lsn`` alone), then ``txId`` as a tie-breaker."""
    raw = source.get("sequence")
    if raw is None:
        msg = "PostgreSQL event without source.sequence; raw lsn alone is not a safe order"
        raise EnvelopeError(msg)
    try:
        seq = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        msg = f"source.sequence is not JSON: {raw!r}"
        raise EnvelopeError(msg) from None
    if not isinstance(seq, list) or len(seq) != 2:
        msg = f"source.sequence must be [last_commit_lsn, lsn]: {raw!r}"
        raise EnvelopeError(msg)
    parts = (_int(seq[0], "last commit LSN"), _int(seq[1], "LSN"), _int(source.get("txId"), "txId"))
    return SourcePosition(SourceKind.POSTGRES, parts)


_BINLOG_INDEX = re.compile(r"\.(\d+)$")


def binlog_file_index(name: str | None) -> int:
    """``mysql-bin.000010`` → 10: compared numerically so rollover past 999999 still orders."""
    if not name:
        return 0
    match = _BINLOG_INDEX.search(name)
    if match is None:
        msg = f"binlog file name without a numeric suffix: {name!r}"
        raise EnvelopeError(msg)
    return int(match.group(1))


def gtid_sequence(gtid: str | None) -> int:
    """MariaDB ``domain-server-seq`` or MySQL ``uuid:seq`` (last interval end) → seq."""
    if not gtid:
        return 0
    tail = gtid.split(",")[-1].strip()
    token = re.split(r"[-:]", tail)[-1]
    return _int(token, f"GTID {gtid!r} sequence")


def mysql_position(source: Mapping[str, Any]) -> SourcePosition:
    """GTID first (survives failover), then binlog file index, position and row."""
    parts = (
        gtid_sequence(source.get("gtid")),
        binlog_file_index(source.get("file")),
        _int(source.get("pos"), "binlog pos"),
        _int(source.get("row"), "binlog row"),
    )
    return SourcePosition(SourceKind.MYSQL, parts)


def position_of(source: Mapping[str, Any]) -> SourcePosition:
    """Pick the position model from ``source.connector``."""
    connector = str(source.get("connector", "")).lower()
    if connector == "postgresql":
        return postgres_position(source)
    if connector in {"mysql", "mariadb"}:
        return mysql_position(source)
    msg = f"unsupported source connector {connector!r}; expected postgresql, mysql or mariadb"
    raise EnvelopeError(msg)
