"""Read a JetStream stream back as a subscriber sees it (sync wrappers for the tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeout


async def _stream_count(url: str, stream: str) -> int:
    nc = await nats.connect(url, connect_timeout=2)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.messages)
    except Exception:  # not created yet
        return 0
    finally:
        await nc.close()


def stream_count(url: str, stream: str) -> int:
    return asyncio.run(_stream_count(url, stream))


async def _read_all(url: str, stream: str, subjects: str, expected: int) -> list[Any]:
    """Every message of the stream, through an ephemeral pull consumer (acked as read)."""
    nc = await nats.connect(url, connect_timeout=2)
    msgs: list[Any] = []
    try:
        sub = await nc.jetstream().pull_subscribe(subjects, stream=stream)
        while True:
            try:
                batch = await sub.fetch(500, timeout=2)
            except NatsTimeout:
                break  # nothing more within 2 s: the stream is read to its end
            for m in batch:
                await m.ack()
            msgs += batch
            if len(msgs) > expected * 2:
                break
        return msgs
    finally:
        await nc.close()


def read_all(url: str, stream: str, subjects: str, expected: int) -> list[Any]:
    return asyncio.run(_read_all(url, stream, subjects, expected))


async def _delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url, connect_timeout=2)
    try:
        await nc.jetstream().delete_stream(stream)
    except Exception:  # never created
        pass
    finally:
        await nc.close()


def delete_stream(url: str, stream: str) -> None:
    asyncio.run(_delete_stream(url, stream))
