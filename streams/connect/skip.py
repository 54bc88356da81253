"""Skip, on purpose and on the record, the one PostgreSQL transaction a connector cannot get past.

A change Connect can never produce (a row larger than the broker accepts: RecordTooLarge) fails
the task on every restart, and the slot keeps every later change behind it. When raising the
limits is not an option, the way forward is to move the connector's stored offset past that
transaction and nothing else:

1. stop the connector (its task releases the slot; the stored offset stays);
2. peek the slot (``pg_logical_slot_peek_binary_changes``: reads, consumes nothing) for the first
   transaction whose changes lie after the stored offset — the one that fails;
3. store an offset at that transaction's end LSN (Connect's offsets API, connector STOPPED), so
   Debezium asks PostgreSQL to stream from there and PostgreSQL skips the transaction;
4. append what was skipped (connector, xid, LSNs, tables, number of changes, bytes, reason, who
   and when) to the skip ledger, ``<state_dir>/capture-skips.jsonl``;
5. resume.

The skipped rows are missing from Kafka and from the sink until they change again or are
re-snapshotted (``changefeed connectors snapshot``) — after the source row is made smaller.
"""

from __future__ import annotations

import getpass
import json
import struct
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from streams.connect.apply import wait_state
from streams.connect.client import ConnectClient
from streams.connect.models import SourceOffset
from streams.errors import ConfigError
from streams.settings import DatabaseSettings, Settings

LEDGER = "capture-skips.jsonl"
_POSTGRES = "io.debezium.connector.postgresql.PostgresConnector"
# Peek this many changes first, then ten times more, until the failing transaction is complete.
_PEEK_START, _PEEK_MAX = 64, 10_000_000


@dataclass(frozen=True)
class PendingTransaction:
    xid: int
    first_lsn: int
    end_lsn: int  # just past the commit record: streaming from here skips this transaction
    changes: int
    data_bytes: int
    tables: tuple[str, ...]


@dataclass(frozen=True)
class SkipRecord:
    connector: str
    slot: str
    xid: int
    first_lsn: str
    end_lsn: str
    changes: int
    data_bytes: int
    tables: tuple[str, ...]
    reason: str
    previous_offset: dict[str, Any]
    at: str
    by: str


def lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def _relation(data: bytes) -> tuple[int, str]:
    """pgoutput Relation message: 'R', relid int32, namespace cstring, relname cstring, ..."""
    relid = struct.unpack(">I", data[1:5])[0]
    namespace, relname = data[5:].split(b"\0")[:2]
    return relid, f"{namespace.decode()}.{relname.decode()}"


def first_pending(rows: Sequence[tuple[str, int, bytes]], processed_lsn: int) -> PendingTransaction | None:
    """The first complete transaction in peeked pgoutput rows that starts after ``processed_lsn``.

    ``rows`` are ``(lsn, xid, data)`` as the peek returns them; a transaction is already processed
    when its first message is at or before the LSN Debezium stored (it stores the LSN of the last
    change it produced, and the slot's confirmed position trails it until the next flush).
    """
    relations: dict[int, str] = {}  # pgoutput describes a relation once per decoding session
    current: list[tuple[int, bytes]] = []
    for lsn_str, xid, data in rows:
        lsn, kind = parse_lsn(lsn_str), data[:1]
        if kind == b"B":
            current = []
        elif kind == b"R":
            relid, relname = _relation(data)
            relations[relid] = relname
        current.append((lsn, data))
        if kind != b"C" or current[0][0] <= processed_lsn:
            continue
        # Commit message: 'C', flags int8, commit_lsn int64, end_lsn int64, commit_ts int64.
        end_lsn = struct.unpack(">Q", data[10:18])[0]
        # Insert/Update/Delete messages start with the relation id (int32) after their tag.
        changes = [d for _, d in current if d[:1] in (b"I", b"U", b"D")]
        relids = {struct.unpack(">I", d[1:5])[0] for d in changes}
        tables = tuple(sorted(relations.get(r, f"relid {r}") for r in relids))
        return PendingTransaction(
            xid, current[0][0], end_lsn, len(changes), sum(len(d) for d in changes), tables
        )
    return None


def peek_pending(
    db: DatabaseSettings, slot: str, publication: str, processed_lsn: int
) -> PendingTransaction | None:
    """Peek the (inactive) slot until the first unprocessed transaction is complete."""
    with psycopg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
        dbname=db.database, application_name="changefeed-skip", autocommit=True,
    ) as conn:  # fmt: skip
        n = _PEEK_START
        while True:
            rows = conn.execute(
                "SELECT lsn::text, xid::text::bigint, data FROM pg_logical_slot_peek_binary_changes("
                "%s, NULL, %s, 'proto_version', '1', 'publication_names', %s)",
                (slot, n, publication),
            ).fetchall()
            pending = first_pending(
                [(str(lsn), int(xid), bytes(data)) for lsn, xid, data in rows], processed_lsn
            )
            if pending is not None or len(rows) < n or n >= _PEEK_MAX:
                return pending
            n *= 10


def skip_postgres_transaction(
    settings: Settings, client: ConnectClient, name: str, reason: str, *, resume: bool = True
) -> SkipRecord:
    """Steps 1-5 of the module docstring; raises ConfigError when there is nothing to skip."""
    config = client.config(name)
    if config is None or config.get("connector.class") != _POSTGRES:
        msg = f"{name}: not a Debezium PostgreSQL connector on this Connect cluster"
        raise ConfigError(msg)
    if not reason.strip():
        msg = "a skip needs a reason: it is recorded with what was skipped"
        raise ConfigError(msg)
    slot, publication = config.get("slot.name", "debezium"), config.get("publication.name", "dbz_publication")
    client.stop(name)
    wait_state(client, name, "STOPPED")
    offsets = client.offsets(name)
    if len(offsets) != 1 or not offsets[0].offset:
        msg = f"{name}: expected one stored offset, found {len(offsets)}; nothing changed (connector STOPPED)"
        raise ConfigError(msg)
    stored = dict(offsets[0].offset or {})
    processed = int(stored.get("lsn_proc") or stored.get("lsn") or 0)
    pending = _wait_peek(settings.source_postgres, slot, publication, processed)
    if pending is None:
        msg = (
            f"{name}: no complete transaction after LSN {lsn_text(processed)} in slot {slot}; nothing changed"
        )
        raise ConfigError(msg)
    moved = {**stored, "lsn": pending.end_lsn, "lsn_proc": pending.end_lsn, "lsn_commit": pending.end_lsn,
             "txId": pending.xid}  # fmt: skip
    moved.pop("messageType", None)
    client.alter_offsets(name, [SourceOffset(offsets[0].partition, moved)])
    record = SkipRecord(
        connector=name, slot=slot, xid=pending.xid, first_lsn=lsn_text(pending.first_lsn),
        end_lsn=lsn_text(pending.end_lsn), changes=pending.changes, data_bytes=pending.data_bytes,
        tables=pending.tables, reason=reason, previous_offset=stored,
        at=datetime.now(UTC).isoformat(timespec="seconds"), by=getpass.getuser(),
    )  # fmt: skip
    ledger = settings.stack.state_dir.resolve() / LEDGER
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with ledger.open("a", encoding="utf-8") as out:
        out.write(json.dumps(asdict(record)) + "\n")
    if resume:
        client.resume(name)
    return record


def _wait_peek(
    db: DatabaseSettings, slot: str, publication: str, processed: int
) -> PendingTransaction | None:
    """Peek once the stopped task has released the slot (an active slot cannot be peeked)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return peek_pending(db, slot, publication, processed)
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # the stopped task releases the slot asynchronously


def read_ledger(settings: Settings) -> list[dict[str, Any]]:
    path: Path = settings.stack.state_dir.resolve() / LEDGER
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
