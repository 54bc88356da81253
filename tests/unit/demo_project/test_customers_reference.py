"""The customers transform gives exactly what it gave before its per-event costs were cut.

``_reference_events`` is the transform and its helpers as they were at d2d9d31 (plain, with the
standard library's uuid5), kept here verbatim in behaviour: every published event must stay the
same (ids, envelopes, data), so consumers de-duplicating on ids see nothing new after an upgrade.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from streams.cdc import ChangeEvent, Op, SourceKind, parse_change_event
from streams.demo.project.customers import customer_events
from streams.errors import TransformError
from streams.project import DomainEvent
from streams.project.events import _NAMESPACE
from streams.sinks.previous import with_before


def _ref_id(*parts: object) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(map(str, parts))))


def _ref_str(pos: Any) -> str:
    return "None" if pos is None else f"{pos.kind.name.lower()}:" + "/".join(str(p) for p in pos.parts)


def _ref_position(event: ChangeEvent) -> dict[str, Any]:
    pos, src = event.position, event.source
    record: dict[str, Any] = {"system": "UNKNOWN"}
    if pos is not None and pos.kind is SourceKind.POSTGRES:
        lsn = pos.parts[1] or pos.parts[0]
        record.update(system="POSTGRESQL", commit_lsn=pos.parts[0], lsn=lsn, tx_id=pos.parts[2])
    elif pos is not None and pos.kind is SourceKind.MYSQL:
        record.update(
            system="MARIADB",
            gtid=src.get("gtid"),
            binlog_file=src.get("file"),
            binlog_pos=src.get("pos"),
            binlog_row=src.get("row"),
        )
    return record


def _ref_version(pos: Any) -> int:
    if pos is None:
        return 0
    if pos.kind is SourceKind.POSTGRES:
        return int(min(pos.parts[1] or pos.parts[0], 2**63 - 1))
    file, offset, _phase, row = pos.parts
    return int(min((file << 42) | (min(offset, 0xFFFFFFFF) << 10) | min(row, 0x3FF), 2**63 - 1))


def _ref_full_name(row: Mapping[str, Any]) -> str:
    return " ".join(p for p in (row.get("first_name"), row.get("last_name")) if p)


def _ref_event(change: ChangeEvent, name: str, cid: int, data: dict[str, Any]) -> DomainEvent:
    return DomainEvent(
        topic="domain.customers",
        record=f"dev.changefeed.customers.{name}",
        id=_ref_id(change.table_id, cid, _ref_str(change.position), name),
        source=f"{change.source.get('name', '')}-{change.source.get('connector', '')}/{change.table_id}",
        time=change.source_ts or change.ts,  # type: ignore[arg-type]
        subject=str(cid),
        version=_ref_version(change.position),
        position=_ref_position(change),
        data={"customer_id": cid, **data},
    )


def _reference_events(change: ChangeEvent) -> list[DomainEvent]:
    if change.tombstone or change.op is Op.TRUNCATE:
        return []
    row = change.row or {}
    key = change.key if isinstance(change.key, Mapping) else {}
    cid = row.get("id", key.get("id"))
    if not isinstance(cid, int):
        raise TransformError("no id")
    if change.op is Op.DELETE:
        return [_ref_event(change, "CustomerDeleted", cid, {})]
    after = change.after or {}
    if not isinstance(after.get("email"), str):
        raise TransformError("no email")
    if change.op in (Op.CREATE, Op.READ):
        data = {"email": after["email"], "full_name": _ref_full_name(after), "country": None}
        return [_ref_event(change, "CustomerRegistered", cid, data)]
    before = change.before
    out = []
    if before is None or before.get("email") != after.get("email"):
        old = None if before is None else before.get("email")
        out.append(
            _ref_event(change, "CustomerEmailChanged", cid, {"old_email": old, "new_email": after["email"]})
        )
    profile: dict[str, Any] = {}
    if before is None or _ref_full_name(before) != _ref_full_name(after):
        profile["full_name"] = _ref_full_name(after)
    if before is None or before.get("phone") != after.get("phone"):
        profile["phone"] = after.get("phone")
    if profile:
        out.append(_ref_event(change, "CustomerProfileUpdated", cid, {"country": None, **profile}))
    return out


_NAMES = [None, "", "Ada", "Ada Mary", "Zoë", " "]
_PHONES = [None, "", "+41 44 000", "+1"]


def _row(rng: random.Random, cid: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "email": rng.choice(["a@x.test", "b@x.test", "", None]),
        "first_name": rng.choice(_NAMES),
        "last_name": rng.choice(_NAMES),
        "phone": rng.choice(_PHONES),
        "tier": "gold",
    }
    if cid is not _MISSING:
        row["id"] = cid
    for column in ("first_name", "last_name", "phone"):
        if rng.random() < 0.1:
            del row[column]  # a column the writer schema does not carry
    return row


_MISSING = object()


def _source(rng: random.Random) -> dict[str, Any]:
    snapshot = rng.choice(["false", "false", "true", "last", "incremental", None])
    if rng.random() < 0.6:
        first = rng.choice([None, str(rng.randrange(2**40))])
        return {
            "connector": "postgresql",
            "name": rng.choice(["customers", "cf"]),
            "schema": "public",
            "table": "customers",
            "sequence": json.dumps([first, str(rng.randrange(2**40))]),
            "txId": rng.randrange(2**32),
            "ts_ms": 1_700_000_000_000 + rng.randrange(10**6),
            "snapshot": snapshot,
        }
    return {
        "connector": rng.choice(["mariadb", "mysql"]),
        "name": "shop",
        "db": "public",
        "table": "customers",
        "file": f"mysql-bin.{rng.randrange(1, 10**6):06d}",
        "pos": rng.randrange(2**33),
        "row": rng.randrange(2000),
        "gtid": rng.choice([None, f"0-1-{rng.randrange(10**6)}"]),
        "ts_ms": 1_700_000_000_000,
        "snapshot": snapshot,
    }


def _changes(n: int) -> list[ChangeEvent]:
    rng = random.Random(41)
    out = []
    for i in range(n):
        cid = (
            rng.choice([7, 10**12, 0, True, "7", None, _MISSING])
            if rng.random() < 0.1
            else rng.randrange(10**6)
        )
        op = rng.choice("ccruuuud")
        row = _row(rng, cid)
        before = _row(rng, cid) if op == "d" or rng.random() < 0.3 else None
        value = {
            "op": op,
            "before": before if op in "ud" else None,
            "after": None if op == "d" else row,
            "source": _source(rng),
            "ts_ms": rng.choice([None, 1_700_000_000_001]),
        }
        key = rng.choice([{"id": cid}, {"id": 3}, None, "raw"]) if cid is not _MISSING else {"id": 5}
        change = parse_change_event(value, key=key, topic="customers.public.customers", partition=0, offset=i)
        if op == "u" and change.before is None and rng.random() < 0.5:
            change = with_before(change, {k: v for k, v in _row(rng, cid).items() if k != "tier"})  # rebuilt
        out.append(change)
    return out


def test_customer_events_are_exactly_the_reference_ones() -> None:
    checked = 0
    for change in _changes(4000):
        try:
            expected = _reference_events(change)
        except TransformError:
            with pytest.raises(TransformError):
                customer_events(change)
            continue
        got = customer_events(change)
        assert got == expected
        for e, ref in zip(got, expected, strict=True):
            assert list(e.data) == list(ref.data)  # same key order too (JSON renderings)
            assert e.to_avro() == ref.to_avro()
        checked += len(got)
    assert checked > 3000
