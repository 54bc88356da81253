"""Dead letters for the bus's agents, in the materializer's format (``streams.pipeline.deadletter``).

A poison domain event (bytes that do not decode, a handler that fails permanently, an event
without CloudEvents headers) goes to ``<topic>.dlq`` on its own partition with the same
``cf_*`` headers, so ``changefeed dlq show|replay`` read it like any other dead letter. The send
is retried until Kafka takes it: only then is the event acked. A crash between the send and the
commit can write the same letter twice (the bus's DLQ is at-least-once, unlike the
materializer's, which checks the DLQ before writing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.pipeline.deadletter import Header, Poison, letter


def headers_of(message: Any) -> list[Header]:
    """A Faust message's headers as (name, bytes) pairs, whatever container Faust used."""
    raw = message.headers or []
    items = raw.items() if isinstance(raw, Mapping) else raw
    return [(str(k), bytes(v) if v is not None else b"") for k, v in items]


def poison_of(message: Any, error: BaseException) -> Poison:
    timestamp = message.timestamp or 0.0
    return Poison(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(timestamp * 1000),
        key=message.key,
        value=message.value,
        headers=headers_of(message),
        error=error,
    )


async def send_dead_letter(producer: Any, message: Any, error: BaseException, max_bytes: int) -> None:
    p = poison_of(message, error)
    out = letter(p, max_bytes)
    await producer.send_and_wait(p.dlq_topic, out.key, out.value, p.partition, None, out.headers)


def header(headers: Sequence[Header], name: str) -> str | None:
    for k, v in headers:
        if k == name:
            return v.decode(errors="replace")
    return None
