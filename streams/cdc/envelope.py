"""The Debezium change event, modelled once for every source and converter.

Input is an already-decoded value: the Avro record as a dict, or the JSON converter's
``{"schema": ..., "payload": ...}`` wrapper (or its bare payload). A Kafka tombstone (value
``None``, sent after a delete so compaction can drop the key) becomes an explicit
``ChangeEvent`` with ``tombstone=True``, so callers never have to special-case ``None``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from streams.cdc.position import SourcePosition, position_of
from streams.errors import EnvelopeError, MessageOrigin

Row = Mapping[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Op(enum.StrEnum):
    """Debezium's ``op`` field."""

    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    READ = "r"  # snapshot
    TRUNCATE = "t"


@dataclass(frozen=True)
class ChangeEvent:
    """One row change (or tombstone) with where it came from in Kafka and in the source."""

    op: Op
    before: Row | None
    after: Row | None
    source: Row
    ts: datetime | None  # when Debezium processed the change
    source_ts: datetime | None  # when the source committed it
    position: SourcePosition | None  # None only for tombstones
    key: Any = None
    tombstone: bool = False
    topic: str = ""
    partition: int = -1
    offset: int = -1
    table_id: str = ""  # ``schema.table`` (PostgreSQL) or ``database.table`` (MariaDB/MySQL)
    # Row field → Debezium semantic type (``connect.name``), for ``streams.cdc.logical``.
    logical_types: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def origin(self) -> MessageOrigin:
        return MessageOrigin(self.topic, self.partition, self.offset)

    @property
    def row(self) -> Row | None:
        """The row image that describes the key's state after this event (``before`` for deletes)."""
        return self.before if self.op is Op.DELETE else self.after


def _unwrap(value: Any) -> Any:
    """Strip the JSON converter's ``{"schema", "payload"}`` wrapper when present."""
    if value is None or (type(value) is dict and "payload" not in value):
        return value  # the Avro path: a plain dict, no ABC check per event
    if isinstance(value, Mapping) and "payload" in value and set(value) <= {"schema", "payload"}:
        return value["payload"]
    return value


def _timestamp(envelope: Mapping[str, Any]) -> datetime | None:
    """Prefer the finer ``ts_us``/``ts_ns`` (Debezium ≥ 2.4) over ``ts_ms``; always UTC-aware."""
    raw = envelope.get("ts_us")
    if raw is not None:
        return _EPOCH + timedelta(microseconds=int(raw))
    raw = envelope.get("ts_ns")
    if raw is not None:
        return _EPOCH + timedelta(microseconds=int(raw) // 1000)
    raw = envelope.get("ts_ms")
    if raw is not None:
        return _EPOCH + timedelta(microseconds=int(raw) * 1000)
    return None


def _is_mapping(value: Any) -> TypeGuard[Row]:
    # ``type is dict`` first: fastavro's records are dicts, and isinstance against the Mapping ABC
    # costs several times more (it ran 5 times per event).
    return type(value) is dict or isinstance(value, Mapping)


def _row(value: Any, name: str, topic: str, partition: int, offset: int) -> Row | None:
    if value is None or _is_mapping(value):
        return value
    msg = f"envelope field {name!r} is not a record: {type(value).__name__}"
    raise EnvelopeError(msg, MessageOrigin(topic, partition, offset))


_OPS = {op.value: op for op in Op}
_new = object.__new__
_set = object.__setattr__


def _event(
    op: Op,
    before: Row | None,
    after: Row | None,
    source: Row,
    ts: datetime | None,
    source_ts: datetime | None,
    position: SourcePosition | None,
    key: Any,
    topic: str,
    partition: int,
    offset: int,
    table_id: str,
    logical_types: Mapping[str, str],
) -> ChangeEvent:
    """``ChangeEvent(...)`` for a parsed event, its instance dict set in one step: the frozen
    dataclass's ``__init__`` sets 14 fields one ``object.__setattr__`` at a time (a third of the
    parse). Same fields, same values (a unit test checks the keys against the dataclass's)."""
    event: ChangeEvent = _new(ChangeEvent)
    _set(
        event,
        "__dict__",
        {
            "op": op,
            "before": before,
            "after": after,
            "source": source,
            "ts": ts,
            "source_ts": source_ts,
            "position": position,
            "key": key,
            "tombstone": False,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "table_id": table_id,
            "logical_types": logical_types,
        },
    )
    return event


def parse_change_event(
    value: Any,
    *,
    key: Any = None,
    topic: str = "",
    partition: int = -1,
    offset: int = -1,
    logical_types: Mapping[str, str] | None = None,
) -> ChangeEvent:
    """Build a ``ChangeEvent`` from a decoded Kafka value; raise ``EnvelopeError`` if it isn't one."""
    key, payload = _unwrap(key), _unwrap(value)
    if payload is None:
        return ChangeEvent(Op.DELETE, None, None, {}, None, None, None, key, True, topic, partition, offset)
    # The origin is built only for an error: once per event it was a visible share of parsing.
    if not _is_mapping(payload):
        msg = f"change event is not a record: {type(payload).__name__}"
        raise EnvelopeError(msg, MessageOrigin(topic, partition, offset))
    raw_op = payload.get("op")
    op = _OPS.get(raw_op) if type(raw_op) is str else None
    if op is None:
        try:
            op = Op(str(raw_op))
        except ValueError:
            msg = f"unknown or missing op {raw_op!r}"
            raise EnvelopeError(msg, MessageOrigin(topic, partition, offset)) from None
    source = payload.get("source")
    if not _is_mapping(source):
        msg = "change event without a source block"
        raise EnvelopeError(msg, MessageOrigin(topic, partition, offset))
    before = _row(payload.get("before"), "before", topic, partition, offset)
    after = _row(payload.get("after"), "after", topic, partition, offset)
    msg = ""
    if after is None and (op is Op.CREATE or op is Op.UPDATE or op is Op.READ):
        msg = f"op {op.value!r} without an after image"
    elif op is Op.DELETE and before is None and key is None:
        msg = "delete without a before image or a key"
    if msg:
        raise EnvelopeError(msg, MessageOrigin(topic, partition, offset))
    try:
        position = position_of(source)
    except EnvelopeError as exc:
        raise EnvelopeError(str(exc), MessageOrigin(topic, partition, offset)) from None
    container = source.get("schema") or source.get("db") or ""
    table_id = f"{container}.{source.get('table') or ''}"
    return _event(
        op,
        before,
        after,
        source,
        _timestamp(payload),
        _timestamp(source),
        position,
        key,
        topic,
        partition,
        offset,
        table_id,
        logical_types or {},
    )
