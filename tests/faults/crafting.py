"""Crafted bytes for the data-fault scenarios: re-encoded real change events, poison, DLQ reads.

Everything here talks only to the stack whose ``Settings`` it is given (the private fault stack).
The poison makers are pure and unit-tested in ``tests/unit/faults``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.codecs import AvroDecoder, AvroEncoder
from streams.codecs.schemas import WriterSchemas
from streams.codecs.wire import HEADER_SIZE, frame, schema_id_of
from streams.errors import DecodeError
from streams.pipeline import parse_headers
from streams.registry.client import RegistryClient
from streams.settings import Settings

CUSTOMERS_TOPIC = "customers.public.customers"


# --- poison (pure) ---------------------------------------------------------------------------
def truncated(value: bytes) -> bytes:
    """Magic byte 0 + the real schema id + the first half of the Avro body (B1)."""
    body = len(value) - HEADER_SIZE
    assert body > 1, "nothing to truncate"
    return value[: HEADER_SIZE + body // 2]


def unknown_schema_id(value: bytes, schema_id: int = 2_000_000_000) -> bytes:
    """A well-formed frame naming an id the registry never issued (B2)."""
    return frame(schema_id, value[HEADER_SIZE:])


def wrong_magic(value: bytes, magic: int = 0x01) -> bytes:
    assert magic != 0
    return bytes([magic]) + value[1:]


def plain_json(row: dict[str, Any]) -> bytes:
    """What a JSON-converter producer would write to an Avro topic; starts with ``{`` (0x7b)."""
    return json.dumps({"op": "c", "after": row, "source": {}}).encode()


# --- reading topics -------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def read_topic(settings: Settings, topic: str, timeout_s: float = 60) -> list[Message]:
    """Every record of ``topic`` up to its end offsets at call time."""
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        if not tps:
            return []
        ends = c.end_offsets(tps)
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while any(c.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"reading {topic} did not reach its end offsets"
            for tp, records in c.poll(1000, max_records=5000).items():
                out += [
                    Message(tp.partition, r.offset, r.key, r.value, list(r.headers or ()))
                    for r in records
                    if r.offset < ends[tp]
                ]
        return out
    finally:
        c.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        return {tp.partition: o for tp, o in c.end_offsets(tps).items()}
    finally:
        c.close()


def dead_letters(settings: Settings, topic: str) -> list[dict[str, str]]:
    """The changefeed headers of every record on ``<topic>.dlq`` (empty if the topic is absent)."""
    return [parse_headers(m.headers) for m in read_topic(settings, f"{topic}.dlq")]


class Recoder:
    """Decodes real change events of a topic and re-encodes (possibly edited) copies."""

    def __init__(self, settings: Settings) -> None:
        self.registry = RegistryClient(settings.registry.url)
        self.decoder = AvroDecoder(self.registry)
        self.writers = WriterSchemas(self.registry)
        self._encoders: dict[int, AvroEncoder] = {}
        self.producer = KafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", linger_ms=20
        )

    def decode(self, data: bytes) -> Any:
        return self.decoder.decode(data)

    def decode_or_none(self, data: bytes) -> Any:
        """None for poison another scenario injected (B1/B2) into the same topic."""
        try:
            return self.decoder.decode(data)
        except DecodeError:
            return None

    def reencode(self, original: bytes, record: Any) -> bytes:
        """``record`` encoded with the writer schema of ``original`` (same id, same shape)."""
        sid = schema_id_of(original)
        enc = self._encoders.get(sid)
        if enc is None:
            enc = self._encoders[sid] = AvroEncoder(sid, self.writers.get(sid))
        return enc.encode(record)

    def send_all(
        self, topic: str, messages: Iterable[tuple[int | None, bytes | None, bytes | None]]
    ) -> list[tuple[int, int]]:
        """Produce (partition, key, value) triples, wait for every ack; their (partition, offset)."""
        futures = [self.producer.send(topic, key=k, value=v, partition=p) for p, k, v in messages]
        self.producer.flush(60)
        metas = [f.get(30) for f in futures]
        return [(m.partition, m.offset) for m in metas]

    def close(self) -> None:
        self.producer.close(10)


def first_events(recoder: Recoder, messages: Iterable[Message], ids: set[int], op: str) -> dict[int, Message]:
    """The earliest message per customer id in ``ids`` whose op is ``op``."""
    found: dict[int, Message] = {}
    for m in messages:
        if m.value is None:
            continue
        try:
            v = recoder.decode(m.value)
        except DecodeError:
            continue  # poison another scenario injected (B1/B2)
        row = v.get("after") or v.get("before") or {}
        cid = row.get("id")
        if v.get("op") == op and cid in ids and cid not in found:
            found[cid] = m
    return found


# --- source and sink rows -------------------------------------------------------------------
def insert_customers(conn: Any, tag: str, count: int, extra: dict[str, Any] | None = None) -> list[int]:
    """``count`` new customers in one multi-row INSERT (one transaction); their ids, ascending.

    ``extra`` values (the same for every row) are bound as parameters, never spliced into SQL.
    """
    cols = list((extra or {}).keys())
    names = "".join(f", {c}" for c in cols)
    params = "".join(", %s" for _ in cols)
    rows = conn.execute(
        f"INSERT INTO public.customers (email, first_name, last_name{names})"  # names from the caller
        f" SELECT %s || g || '@faults.test', 'F' || g, 'L' || g{params} FROM generate_series(1, %s) g"
        " RETURNING id",
        [f"{tag}-", *(extra or {}).values(), count],
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def ledger_count(sink: Any, ids: list[int], since_id: int, reason: str = "stale") -> int:
    row = sink.execute(
        "SELECT count(DISTINCT row_key->>'customer_id') FROM changefeed_conflicts WHERE id > %s"
        " AND sink_table = 'public.customer_directory' AND reason = %s"
        " AND (row_key->>'customer_id')::bigint = ANY(%s)",
        [since_id, reason, ids],
    ).fetchone()
    return int(row[0])


def ledger_mark(sink: Any) -> int:
    return int(sink.execute("SELECT coalesce(max(id), 0) FROM changefeed_conflicts").fetchone()[0])


def sink_rows(sink: Any, ids: list[int]) -> list[tuple[Any, ...]]:
    """(id, position, xmin) of the materialized rows of ``ids``: equal before/after = untouched."""
    return sink.execute(
        "SELECT customer_id, _cf_position, xmin::text FROM customer_directory"
        " WHERE customer_id = ANY(%s) ORDER BY 1",
        [ids],
    ).fetchall()
