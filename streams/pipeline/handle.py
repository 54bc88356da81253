"""One Kafka record → sink writes and its domain events (raises typed errors, never swallows).

Routing by topic: outbox topics carry EventRouter messages (an Avro string holding JSON, event
type and id in headers); every other topic carries Debezium change events for the sink.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from streams.cdc import parse_change_event
from streams.cdc.topics import OUTBOX_PREFIX, parse_table_topic
from streams.codecs import AvroDecoder
from streams.errors import ConfigError, DecodeError, MessageOrigin, TransformError
from streams.pipeline.publisher import Encoders
from streams.project.events import DomainEvent, OutboxMessage
from streams.project.handlers import HandlerRegistry
from streams.sinks import AsyncPostgresSink
from streams.sinks.carry import new_key_of, old_key_of
from streams.sinks.previous import PreviousRows

_OUTBOX = OUTBOX_PREFIX + "."
_AHEAD: Any = object()  # not decoded ahead: ``handle`` decodes it
Decoded = dict[tuple[str, int, int], Any]  # decoded keys or values, by (topic, partition, offset)


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class Handler:
    def __init__(
        self,
        decoder: AvroDecoder,
        registry: HandlerRegistry,
        encoders: Encoders | None,
        sink: AsyncPostgresSink,
        previous: PreviousRows | None = None,
    ) -> None:
        self.decoder = decoder
        self.registry = registry
        self.encoders = encoders
        self.sink = sink
        # Updates without a before image get one rebuilt from the sink, so transforms emit only
        # what really changed (customers: REPLICA IDENTITY DEFAULT, see previous.py).
        self.previous = previous
        # Topic → source table, learned from decoded events (topic names need not follow
        # <prefix>.<schema>.<table>, e.g. replays), so prefetch can route keys without values.
        self._tables: dict[str, str] = {}
        # Keys prefetch already decoded, by (topic, partition, offset): handle() does not decode twice.
        self._keys: Decoded = {}
        # Values the transaction gate already decoded (streams.pipeline.atomic), likewise.
        self.values: Decoded = {}

    def _decode(self, data: bytes | None, origin: MessageOrigin) -> Any:
        return None if data is None else self.decoder.decode(data, origin)

    def decode_into(self, records: Sequence[Record], keys: Decoded, values: Decoded) -> None:
        """Decode ``records`` ' keys and values ahead, into ``keys`` and ``values`` (by (topic,
        partition, offset)), for ``prefetch`` to adopt: the loop does it for the next poll while
        the sink commits the current one.

        Pure decoding, no sink and no handler state: a record that fails to decode, for any
        reason, is left out, and ``handle`` decodes it again and deals with its error (a
        transient one is retried, poison is dead-lettered).
        """
        decode = self.decoder.decode
        for r in records:
            at = (r.topic, r.partition, r.offset)
            try:  # no origin: an error here is dropped, and handle() names the record
                key = None if r.key is None else decode(r.key)
                value = None if r.value is None else decode(r.value)
            except Exception:  # noqa: S112 - handle() decodes it again and raises
                continue
            keys[at] = key
            values[at] = value

    async def prefetch(self, records: Sequence[Record], ahead: tuple[Decoded, Decoded] | None = None) -> None:
        """One sink query per poll for the rows its updates replace (not one per update).

        Only an update without a before image needs its stored row, so values are decoded here
        (kept in ``values``: ``handle`` does not decode them again) and an insert-heavy poll asks
        the sink for a few keys, not all of them. ``ahead``: the keys and values ``decode_into``
        decoded already (adopted, not decoded again).
        """
        values = self.values
        if ahead is None:
            self._keys = {}
        else:
            self._keys = ahead[0]
            values.update(ahead[1])
        if self.previous is None or self.encoders is None:
            return
        keys: dict[str, list[Mapping[str, Any]]] = {}
        decoded = self._keys
        for r in records:
            if r.key is None or r.topic.startswith(_OUTBOX):
                continue
            table = self._tables.get(r.topic) or _table_of(r.topic)
            if table is None or table not in self.previous.tables:
                continue
            at = (r.topic, r.partition, r.offset)
            key = decoded.get(at, _AHEAD)
            value = values.get(at, _AHEAD)
            if key is _AHEAD or value is _AHEAD:
                origin = MessageOrigin(*at)
                try:
                    if key is _AHEAD:
                        key = decoded[at] = self._decode(r.key, origin)
                    if value is _AHEAD:
                        value = values[at] = self._decode(r.value, origin)
                except DecodeError:
                    continue  # handle() dead-letters it
            if isinstance(key, Mapping) and _replaces_unknown_row(value):
                keys.setdefault(table, []).append(key)
        await self.previous.prefetch(keys)

    def handle(self, r: Record) -> list[DomainEvent]:
        """Buffer ``r`` in the sink and return its domain events (the loop's publisher encodes them)."""
        topic, partition, offset = r.topic, r.partition, r.offset
        # One lookup each, and none when nothing was decoded ahead (no prefetch, no gate).
        at = (topic, partition, offset)
        key = self._keys.pop(at, _AHEAD) if self._keys else _AHEAD
        value = self.values.pop(at, _AHEAD) if self.values else _AHEAD
        if key is _AHEAD or value is _AHEAD:  # the origin only names a record that fails to decode
            origin = MessageOrigin(topic, partition, offset)
            if key is _AHEAD:
                key = self._decode(r.key, origin)
            if value is _AHEAD:
                value = self._decode(r.value, origin)
        if topic.startswith(_OUTBOX):
            events = self.registry.for_outbox(outbox_message(r, key, value))
            self.sink.mark(topic, partition, offset)  # no rows, but the offset counts
        else:
            change = parse_change_event(
                value,
                key=key,
                topic=topic,
                partition=partition,
                offset=offset,
                logical_types=self.decoder.row_types(r.value),
            )
            self._tables[topic] = change.table_id
            # The table transforms only make domain events: not publishing, they do not run (they
            # were a quarter of the worker's CPU for events thrown away).
            events = []
            if self.encoders is not None:
                events = self.registry.for_change(self.previous.fill(change) if self.previous else change)
            key_fields = list(key) if type(key) is dict or isinstance(key, Mapping) else []
            # A primary-key change names its other key in a header: unchanged TOAST values carry over.
            moved = (old_key_of(r.headers), new_key_of(r.headers)) if r.headers else (None, None)
            self.sink.add(partition, change, self.decoder.row_fields(r.value), key_fields, *moved)
        return events if self.encoders is not None else []


def _replaces_unknown_row(value: Any) -> bool:
    """A change event for an update without a before image (``PreviousRows.fill`` rebuilds one).

    Anything that is not a plain envelope counts too: ``handle`` finds out what it is.
    """
    if not isinstance(value, Mapping):
        return value is not None
    return value.get("op") == "u" and value.get("before") is None


def _table_of(topic: str) -> str | None:
    try:
        t = parse_table_topic(topic)
    except ConfigError:
        return None
    return f"{t.schema}.{t.table}"


def outbox_message(r: Record, key: Any, value: Any) -> OutboxMessage:
    where = f"{r.topic}[{r.partition}]@{r.offset}"
    headers = {k: v.decode(errors="replace") for k, v in r.headers}
    try:
        payload = json.loads(value) if isinstance(value, str | bytes) else value
    except json.JSONDecodeError as exc:
        msg = f"outbox payload is not JSON at {where}: {exc}"
        raise TransformError(msg) from exc
    if not isinstance(payload, dict):
        msg = f"outbox payload is not a JSON object at {where}"
        raise TransformError(msg)
    return OutboxMessage(
        aggregate_type=r.topic[len(OUTBOX_PREFIX) + 1 :],
        aggregate_id=str(key),
        event_type=headers.get("eventType", ""),
        event_id=headers.get("eventId") or headers.get("id", ""),
        payload=payload,
        timestamp=datetime.fromtimestamp(r.timestamp / 1000, tz=UTC),
        topic=r.topic,
        partition=r.partition,
        offset=r.offset,
    )
