"""Finding the transaction to skip in peeked pgoutput messages (binary layout per PostgreSQL's
logical replication protocol: Begin, Relation, Insert, Commit)."""

from __future__ import annotations

import struct

from streams.connect.skip import first_pending, lsn_text, parse_lsn


def begin(final_lsn: int, xid: int) -> bytes:
    return b"B" + struct.pack(">QqI", final_lsn, 0, xid)


def relation(relid: int, schema: str, table: str) -> bytes:
    return b"R" + struct.pack(">I", relid) + schema.encode() + b"\0" + table.encode() + b"\0" + b"\0\0\0"


def insert(relid: int, payload: bytes) -> bytes:
    return b"I" + struct.pack(">I", relid) + b"N" + payload


def commit(commit_lsn: int, end_lsn: int) -> bytes:
    return b"C" + struct.pack(">bQQq", 0, commit_lsn, end_lsn, 0)


def rows(*messages: tuple[int, int, bytes]) -> list[tuple[str, int, bytes]]:
    return [(lsn_text(lsn), xid, data) for lsn, xid, data in messages]


PEEKED = rows(
    # xid 845: already produced by Debezium (its stored lsn is 0x100); the slot still replays it
    (0x100, 845, begin(0x150, 845)),
    (0x100, 845, relation(16400, "public", "big")),
    (0x100, 845, insert(16400, b"small")),
    (0x150, 845, commit(0x150, 0x180)),
    # xid 846: the one that cannot be produced
    (0x200, 846, begin(0x900, 846)),
    (0x200, 846, insert(16400, b"x" * 5000)),
    (0x900, 846, commit(0x900, 0x930)),
    (0xA00, 847, begin(0xA50, 847)),
    (0xA00, 847, insert(16400, b"after")),
    (0xA50, 847, commit(0xA50, 0xA80)),
)


def test_lsn_round_trip() -> None:
    assert lsn_text(0x1_0000_00A4) == "1/A4"
    assert parse_lsn("1/A4") == 0x1_0000_00A4


def test_first_pending_skips_what_was_already_produced() -> None:
    pending = first_pending(PEEKED, processed_lsn=0x100)
    assert pending is not None
    assert pending.xid == 846
    assert pending.first_lsn == 0x200
    assert pending.end_lsn == 0x930  # streaming from here leaves out exactly xid 846
    assert pending.changes == 1
    assert pending.data_bytes == len(insert(16400, b"x" * 5000))
    # the relation was described in an earlier transaction of the same peek
    assert pending.tables == ("public.big",)


def test_no_pending_transaction_when_everything_was_produced_or_incomplete() -> None:
    assert first_pending(PEEKED, processed_lsn=0xA00) is None
    assert first_pending(PEEKED[:6], processed_lsn=0x100) is None  # xid 846 not committed in the peek
