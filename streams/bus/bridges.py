"""Fan-out bridges: every domain event to NATS JetStream and/or Redis Streams, exactly once.

Both forward the event's bytes as they are on Kafka (Confluent-framed Avro: a subscriber decodes
them with the registry) with its CloudEvents attributes, and both make a redelivered event a
no-op keyed by the CloudEvents id (stable across redeliveries, uuid5 of the source position):

* JetStream: ``Nats-Msg-Id`` = the id; the stream's duplicate window drops a second publish and
  answers ``duplicate``. Subject ``<prefix>.<event type>``; the stream (``<prefix>.>``) is created
  when missing.
* Redis: one stream per event type, ``XADD ... MAXLEN ~ n``, CloudEvents attributes as entry
  fields and the bytes in ``data``. Redis has no duplicate window, so one Lua script sets a
  ``<stream>:seen:<id>`` key (NX, with a TTL) and adds the entry only if it set the key: both
  happen or neither.

Every failure of a bridge is transient: the agent retries the same event with backoff and acks
nothing meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
import redis.asyncio as aioredis
from nats.errors import MaxPayloadError
from nats.js.errors import NotFoundError

from streams.settings import NatsBridgeSettings, RedisBridgeSettings

log = logging.getLogger(__name__)
# CloudEvents Kafka binding headers (ce_*) → attribute names.
CE_PREFIX = "ce_"


class CloudEvent:
    """The attributes a bridge forwards, from a domain event's Kafka headers."""

    def __init__(self, attributes: dict[str, str], data: bytes) -> None:
        self.attributes, self.data = attributes, data

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]], value: bytes) -> CloudEvent:
        attrs = {k[len(CE_PREFIX) :]: v.decode() for k, v in headers if k.startswith(CE_PREFIX)}
        content_type = next((v.decode() for k, v in headers if k == "content-type"), None)
        if content_type is not None:
            attrs.setdefault("datacontenttype", content_type)
        missing = [a for a in ("id", "type") if not attrs.get(a)]
        if missing:
            msg = f"domain event without CloudEvents header(s) {', '.join('ce_' + m for m in missing)}"
            raise ValueError(msg)
        return cls(attrs, value)


async def _quiet(error: Exception) -> None:
    # The agent's backoff logs the failure once per retry; nats-py would print a traceback each time.
    log.debug("nats: %r", error)


async def _quiet_event() -> None:
    log.debug("nats: disconnected")


class NatsBridge:
    name = "nats"

    def __init__(self, s: NatsBridgeSettings) -> None:
        self.s = s
        self._nc: Any = None
        self._js: Any = None

    def subject(self, event_type: str) -> str:
        return f"{self.s.subject_prefix}.{event_type}"

    async def _jetstream(self) -> Any:
        if self._nc is None or self._nc.is_closed:
            # No reconnect loop inside the client: a failed publish is retried by the agent's
            # backoff, which reconnects here.
            # max_reconnect_attempts=1: nats-py's initial connect loops forever at 0 or -1.
            connect = nats.connect(
                self.s.url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1,
                reconnect_time_wait=0.5, error_cb=_quiet, disconnected_cb=_quiet_event,
            )  # fmt: skip
            self._nc = await asyncio.wait_for(connect, timeout=10)
            self._js = self._nc.jetstream()
            await self.ensure_stream()
        return self._js

    async def ensure_stream(self) -> None:
        js = self._js
        try:
            await js.stream_info(self.s.stream)
        except NotFoundError:
            await js.add_stream(
                name=self.s.stream,
                subjects=[f"{self.s.subject_prefix}.>"],
                duplicate_window=self.s.duplicate_window_s,
            )
            log.info("created JetStream stream %s", self.s.stream)

    @staticmethod
    def transient(exc: BaseException) -> bool:
        """Worth publishing the same event again. An event larger than the server's
        ``max_payload`` never fits until the server is reconfigured: it is poison (dead-lettered
        with the error, replayable from there), not a reason to hold the partition forever."""
        return not isinstance(exc, MaxPayloadError)

    async def publish(self, event: CloudEvent) -> bool:
        """True if JetStream stored it, False if its duplicate window dropped it."""
        try:
            js = await self._jetstream()
            headers = {"Nats-Msg-Id": event.id, **{f"ce-{k}": v for k, v in event.attributes.items()}}
            ack = await js.publish(self.subject(event.type), event.data, timeout=5, headers=headers)
        except Exception:
            await self.close()  # reconnect on the retry
            raise
        return not ack.duplicate

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception:  # closing a dead connection: nothing to do
                log.debug("closing the NATS connection failed", exc_info=True)


# SET NX first: if the key existed, this event was added already (a redelivery).
_ADD_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
"""


class RedisBridge:
    name = "redis"

    def __init__(self, s: RedisBridgeSettings) -> None:
        self.s = s
        self._redis: Any = aioredis.Redis(
            host=s.host, port=s.port, socket_connect_timeout=2, socket_timeout=5, retry_on_timeout=False
        )
        self._script: Any = self._redis.register_script(_ADD_ONCE)

    @staticmethod
    def transient(exc: BaseException) -> bool:
        """Every Redis failure is retried (a server down, or out of memory until it is freed)."""
        return True

    def stream(self, event_type: str) -> str:
        return f"{self.s.stream_prefix}{event_type}"

    async def publish(self, event: CloudEvent) -> bool:
        """True if the entry was added, False if this event id was added before."""
        stream = self.stream(event.type)
        fields: list[Any] = []
        for k, v in event.attributes.items():
            fields += [k, v]
        fields += ["data", event.data]
        added = await self._script(
            keys=[stream, f"{stream}:seen:{event.id}"], args=[self.s.dedupe_ttl_s, self.s.maxlen, *fields]
        )
        return added is not None

    async def close(self) -> None:
        await self._redis.aclose()
