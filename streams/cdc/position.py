"""Comparable source positions: the version every sink write is guarded by.

Raw PostgreSQL ``source.lsn`` is not monotonic across interleaved transactions (materialize#5668),
so a PostgreSQL position is ``(last commit LSN, LSN, txId)`` taken from ``source.sequence``: events
are emitted in commit order, and every event of a transaction carries the end LSN of the commit
record of the transaction streamed before it (captured: that is exactly the LSN where the next WAL
record starts). MariaDB/MySQL positions are ``(binlog file index, binlog position, phase, row)``.

Snapshot records (``source.snapshot`` = first, first_in_data_collection, true,
last_in_data_collection, last) must compare with streamed records at the snapshot's consistent
point S, so that a snapshot row is applied exactly when it is newer than what the sink holds:

PostgreSQL. A snapshot record carries ``sequence = [null, S]``: S is the slot's consistent point
(new slot) or ``pg_current_wal_lsn()`` read in the snapshot transaction (existing slot, e.g. after
an offset reset); the snapshot sees every transaction whose commit ends at or before S, streaming
resumes with the transactions committing after S. A streamed event with last-commit P:

- ``P >= S``: its transaction commits after the one that ended at P, so after S: newer.
- ``P < S``: its transaction committed before S (older), *or* it is the first transaction
  streamed after the snapshot. That one transaction (T*) may have begun, and written its first
  changes at LSNs below S, before the snapshot point and committed after it; Debezium has seen no
  commit since the snapshot, so T* arrives as ``[null, LSN]`` (captured every time; seen once by
  the issue as a refused record).

So a snapshot record sorts as ``(S, 0, snapshot txId)``: above every ``(P < S, …)``, below every
``(P >= S, L > 0, …)``. T* (streamed, ``sequence[0]`` null) must sort above the snapshot and below
the next transaction (whose P is T*'s commit end, above every LSN of T*): it is ``(S, L, txId)``
when the snapshot point is known (``after_snapshot``; the sink remembers it from the snapshot's
records, see ``streams.sinks.reconcile``), else ``(L, L, txId)``, which is right whenever T*'s
change lies at or above S (the case captured) and was the old ``(0, L, txId)`` order's failure.
Incremental snapshot records carry the streaming position (``[P, P]``, no txId), ``(P, P, 0)``:
older than the streamed event at that point, newer than everything before it.

MariaDB. The binlog is written in commit order. A snapshot record carries no GTID, only the binlog
``file``/``pos`` read under the snapshot lock (S): every transaction committed before the lock
lies before S, every later one at or after S. A GTID-first order cannot place a record without a
GTID (the GTID at S is not in the record), so positions are binlog coordinates first, with a
phase that puts a snapshot record (phase 0) before a streamed event at the same coordinates
(phase 1). The price: after a primary switch (new binlog files) positions from the old and new
primary do not compare; re-snapshot after a switch (README, Troubleshooting). Incremental
snapshot records carry the streaming coordinates (phase 1, like a streamed event there).

Byte encoding (stored as ``bytea`` in ``_cf_position`` so SQL can compare with ``<``)::

    byte 0      format/kind tag: 0x01 PostgreSQL, 0x02 MariaDB/MySQL (GTID-first, before the
                snapshot fix; only read from old sinks), 0x03 MariaDB/MySQL binlog order
    bytes 1..   each part as an unsigned 64-bit big-endian integer (missing parts encode as 0)

PostgreSQL compares ``bytea`` bytewise (memcmp, then length); every part has a fixed width, so the
byte order equals the tuple order. Positions of different kinds are never meant to be compared;
the tag keeps such a comparison deterministic instead of meaningless. Stored 0x02 positions sort
below every 0x03 position, so in a sink written before the change every MariaDB row takes its
next change or its re-snapshot row (the recovery does exactly that).
"""

from __future__ import annotations

import enum
import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.errors import EnvelopeError

_PART = struct.Struct(">Q")
_MAX = 2**64 - 1


class SourceKind(enum.IntEnum):
    """The byte-0 tag of an encoded position."""

    POSTGRES = 1
    MYSQL_GTID = 2  # the old GTID-first order; never produced any more (see the docstring)
    MYSQL = 3  # MariaDB and MySQL share the binlog coordinate model


@dataclass(frozen=True, order=True)
class SourcePosition:
    """A totally ordered point in a source's change stream."""

    kind: SourceKind
    parts: tuple[int, ...]

    def __post_init__(self) -> None:
        # min/max in C: built once per change event, a generator here was a visible share.
        if self.parts and (min(self.parts) < 0 or max(self.parts) > _MAX):
            msg = f"position parts must be unsigned 64-bit integers: {self.parts}"
            raise ValueError(msg)

    def to_bytes(self) -> bytes:
        return _packer(len(self.parts)).pack(self.kind, *self.parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> SourcePosition:
        if not data or (len(data) - 1) % _PART.size:
            msg = f"not an encoded source position: {data!r}"
            raise ValueError(msg)
        parts = tuple(_PART.unpack_from(data, 1 + i * _PART.size)[0] for i in range(len(data) // 8))
        return cls(SourceKind(data[0]), parts)

    def __str__(self) -> str:
        # Per published event (domain event ids are derived from it): one %-format of the parts
        # (``%s`` is ``str``) instead of the enum's ``name`` and a join over ``map(str, ...)``.
        parts = self.parts
        text = _TEXT_FORMATS.get((self.kind, len(parts))) or _text_format(self.kind, len(parts))
        return text % parts


_PREFIXES = {kind: f"{kind.name.lower()}:" for kind in SourceKind}
_TEXT_FORMATS: dict[tuple[SourceKind, int], str] = {}


def _text_format(kind: SourceKind, n: int) -> str:
    """``postgres:%s/%s/%s`` for a PostgreSQL position of three parts, and so on (kept)."""
    text = _TEXT_FORMATS[(kind, n)] = _PREFIXES[kind] + "/".join(["%s"] * n)
    return text


_PACKERS: dict[int, struct.Struct] = {}


def _packer(n: int) -> struct.Struct:
    """``>B`` + n ``>Q`` parts: the same bytes as the kind byte and each part packed alone."""
    packer = _PACKERS.get(n)
    if packer is None:
        packer = _PACKERS[n] = struct.Struct(f">B{n}Q")
    return packer


def _int(value: Any, what: str) -> int:
    """Debezium sends LSNs and ids as numbers or decimal strings; null means 'not yet known'."""
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        msg = f"{what} is not an integer: {value!r}"
        raise EnvelopeError(msg) from None


SNAPSHOT_MARKERS = frozenset({"true", "first", "first_in_data_collection", "last_in_data_collection", "last"})
TABLE_DONE_MARKERS = frozenset({"last_in_data_collection", "last"})


def snapshot_marker(source: Mapping[str, Any]) -> str:
    """``source.snapshot`` as text: a full-snapshot marker, ``incremental``, or ``false``."""
    raw = source.get("snapshot")
    if raw is None or raw is False or raw == "false":
        return "false"
    return "true" if raw is True else str(raw).lower()


def is_snapshot(source: Mapping[str, Any]) -> bool:
    """A record of a full (blocking/initial) snapshot; incremental snapshot records are not."""
    return snapshot_marker(source) in SNAPSHOT_MARKERS


# What Debezium writes in ``source.sequence``: two quoted decimal LSNs, the first may be null. This
# shape is read without ``json.loads`` (a sixth of parsing a change event); anything else still
# goes through JSON, so every other value parses (or fails) exactly as before.
_SEQUENCE = re.compile(r'\[(?:"([0-9]+)"|null), ?(?:"([0-9]+)"|null)\]')


# The last sequence text read and its parts: a change event's sequence is read three times (its
# position, the snapshot tracker, the applied watermark), and ``str`` is immutable, so the same
# object (held here, so its identity is not reused) has the same parts.
_last_sequence: tuple[str | None, Sequence[Any]] = (None, ())


def _sequence(source: Mapping[str, Any]) -> Sequence[Any]:
    global _last_sequence  # a one-entry memo
    raw = source.get("sequence")
    if type(raw) is str:
        if raw is _last_sequence[0]:
            return _last_sequence[1]
        match = _SEQUENCE.fullmatch(raw)
        if match is not None:
            parts = match.groups()
            _last_sequence = (raw, parts)
            return parts
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
    return seq


def last_commit_lsn(source: Mapping[str, Any]) -> int | None:
    """``source.sequence[0]`` as a number; None when it is null (the first transaction after a
    snapshot), missing or malformed. Never raises: callers only use it to learn more."""
    try:
        first = _sequence(source)[0]
        return None if first is None else int(first)
    except (EnvelopeError, TypeError, ValueError):
        return None


def first_after_snapshot(source: Mapping[str, Any]) -> bool:
    """A streamed PostgreSQL event with no commit seen since the snapshot (T*, see above)."""
    if str(source.get("connector", "")).lower() != "postgresql" or snapshot_marker(source) != "false":
        return False
    return _sequence(source)[0] is None


_new = object.__new__
_POSTGRES = SourceKind.POSTGRES  # a module global: an enum member read through its class costs more


def _streamed_postgres(parts: tuple[int, int, int]) -> SourcePosition:
    """``SourcePosition(POSTGRES, parts)`` without the frozen ``__init__`` (two ``object.__setattr__``
    and ``__post_init__``, per change event): the same object, the same range check."""
    if min(parts) < 0 or max(parts) > _MAX:
        return SourcePosition(_POSTGRES, parts)  # raises as the constructor does
    position: SourcePosition = _new(SourcePosition)
    position.__dict__.update(kind=_POSTGRES, parts=parts)
    return position


def postgres_position(source: Mapping[str, Any]) -> SourcePosition:
    """Order by ``source.sequence`` (never raw ``lsn`` alone), then ``txId`` as a tie-breaker."""
    seq = _sequence(source)
    lsn, tx = _int(seq[1], "LSN"), _int(source.get("txId"), "txId")
    raw = source.get("snapshot")  # ``is_snapshot``, with its commonest answer read first
    if (raw is not None and raw is not False and raw != "false") and is_snapshot(source):
        return SourcePosition(SourceKind.POSTGRES, (lsn, 0, tx))
    if seq[0] is None:  # T*: (S, L, tx) once the sink knows S (after_snapshot)
        return SourcePosition(SourceKind.POSTGRES, (lsn, lsn, tx))
    return _streamed_postgres((_int(seq[0], "last commit LSN"), lsn, tx))


def snapshot_floor(position: SourcePosition) -> SourcePosition:
    """The snapshot point S of a snapshot record's position: below every row the snapshot wrote
    and every change after it, above every change the snapshot already contains."""
    if position.kind is SourceKind.POSTGRES:
        return SourcePosition(position.kind, (position.parts[0], 0, 0))
    return SourcePosition(position.kind, (*position.parts[:2], 0, 0))


def after_snapshot(position: SourcePosition, floor: SourcePosition) -> SourcePosition:
    """T*'s position ``(S, L, txId)`` given the snapshot point ``floor`` (same source kind)."""
    if position.kind is not SourceKind.POSTGRES or floor.kind is not SourceKind.POSTGRES:
        return position
    return SourcePosition(position.kind, (floor.parts[0], *position.parts[1:]))


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
    """Binlog file index and position, then phase (snapshot 0, streamed 1), then row."""
    streamed = 0 if is_snapshot(source) else 1
    parts = (
        binlog_file_index(source.get("file")),
        _int(source.get("pos"), "binlog pos"),
        streamed,
        _int(source.get("row"), "binlog row"),
    )
    return SourcePosition(SourceKind.MYSQL, parts)


def position_of(source: Mapping[str, Any]) -> SourcePosition:
    """Pick the position model from ``source.connector``."""
    raw = source.get("connector", "")
    if raw == "postgresql":  # Debezium's own spelling: no str()/lower() per event
        return postgres_position(source)
    connector = str(raw).lower()
    if connector == "postgresql":
        return postgres_position(source)
    if connector in {"mysql", "mariadb"}:
        return mysql_position(source)
    msg = f"unsupported source connector {connector!r}; expected postgresql, mysql or mariadb"
    raise EnvelopeError(msg)
