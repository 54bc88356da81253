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
from typing import Any

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
    if isinstance(value, Mapping) and "payload" in value and set(value) <= {"schema", "payload"}:
        return value["payload"]
    return value


def _timestamp(envelope: Mapping[str, Any], prefix: str = "ts") -> datetime | None:
    """Prefer the finer ``ts_us``/``ts_ns`` (Debezium ≥ 2.4) over ``ts_ms``; always UTC-aware."""
    for suffix, mul, div in (("_us", 1, 1), ("_ns", 1, 1000), ("_ms", 1000, 1)):
        raw = envelope.get(prefix + suffix)
        if raw is not None:
            return _EPOCH + timedelta(microseconds=int(raw) * mul // div)
    return None


def _row(value: Any, name: str, origin: MessageOrigin) -> Row | None:
    if value is None or isinstance(value, Mapping):
        return value
    msg = f"envelope field {name!r} is not a record: {type(value).__name__}"
    raise EnvelopeError(msg, origin)


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
    origin = MessageOrigin(topic, partition, offset)
    key, payload = _unwrap(key), _unwrap(value)
    where = {"key": key, "topic": topic, "partition": partition, "offset": offset}
    if payload is None:
        return ChangeEvent(Op.DELETE, None, None, {}, None, None, None, tombstone=True, **where)
    if not isinstance(payload, Mapping):
        msg = f"change event is not a record: {type(payload).__name__}"
        raise EnvelopeError(msg, origin)
    try:
        op = Op(str(payload.get("op")))
    except ValueError:
        msg = f"unknown or missing op {payload.get('op')!r}"
        raise EnvelopeError(msg, origin) from None
    source = payload.get("source")
    if not isinstance(source, Mapping):
        msg = "change event without a source block"
        raise EnvelopeError(msg, origin)
    before = _row(payload.get("before"), "before", origin)
    after = _row(payload.get("after"), "after", origin)
    if op in (Op.CREATE, Op.UPDATE, Op.READ) and after is None:
        msg = f"op {op.value!r} without an after image"
        raise EnvelopeError(msg, origin)
    if op is Op.DELETE and before is None and key is None:
        msg = "delete without a before image or a key"
        raise EnvelopeError(msg, origin)
    try:
        position = position_of(source)
    except EnvelopeError as exc:
        raise EnvelopeError(str(exc), origin) from None
    container = source.get("schema") or source.get("db") or ""
    table_id = f"{container}.{source.get('table') or ''}"
    return ChangeEvent(
        op,
        before,
        after,
        source,
        _timestamp(payload),
        _timestamp(source),
        position,
        table_id=table_id,
        logical_types=logical_types or {},
        **where,
    )
