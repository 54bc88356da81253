"""Dead letters: the poison record's own bytes on ``<topic>.dlq`` with headers saying why.

Headers (all UTF-8 text): ``cf_error_class``, ``cf_error_message``, ``cf_source_topic``,
``cf_source_partition``, ``cf_source_offset``, ``cf_source_timestamp`` (the record's Kafka
timestamp, ms); the record's original headers follow so a replay can restore them.

A dead letter must always be writable, whatever the record (``letter``): a record with neither
key nor value (Kafka clients refuse one) gets an empty value and ``cf_null_value``; a record
too large for the broker once our headers are added keeps the head of its value, with
``cf_truncated`` (the original value's length) and ``cf_value_sha256``; if the broker still
refuses it, ``bare`` is the form that always fits: no key, an empty value, our headers and
``cf_payload_dropped`` saying why. ``changefeed dlq replay`` skips these three forms: a
record with neither key nor value carries nothing to replay (and no producer can send it), and
a truncated or dropped payload's bytes are gone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.record.default_records import (  # type: ignore[import-untyped]  # no py.typed
    DefaultRecordBatchBuilder,
)

from streams.cdc import dlq_topic

log = logging.getLogger(__name__)
PREFIX = "cf_"
# Enough to diagnose; a message that embeds a 1 MB value must not make a 1 MB header.
MAX_MESSAGE = 2000
Header = tuple[str, bytes]
NULL_VALUE = PREFIX + "null_value"
TRUNCATED = PREFIX + "truncated"
VALUE_SHA256 = PREFIX + "value_sha256"
PAYLOAD_DROPPED = PREFIX + "payload_dropped"
# Varint lengths grow by a few bytes at most when a value shrinks to fit; cut this much more.
SIZE_SLACK = 64


@dataclass(frozen=True)
class Poison:
    """One record a consumer could not process, and the error that says why."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header]
    error: BaseException

    @property
    def dlq_topic(self) -> str:
        return dlq_topic(self.topic)


def dlq_headers(p: Poison) -> list[Header]:
    message = str(p.error)[:MAX_MESSAGE]
    ours = {
        "error_class": type(p.error).__name__,
        "error_message": message,
        "source_topic": p.topic,
        "source_partition": str(p.partition),
        "source_offset": str(p.offset),
        "source_timestamp": str(p.timestamp_ms),
    }
    kept = [(k, v) for k, v in p.headers if not k.startswith(PREFIX)]
    return [(PREFIX + k, v.encode()) for k, v in ours.items()] + kept


def parse_headers(headers: Sequence[Header]) -> dict[str, str]:
    """Our headers without the prefix (for ``changefeed dlq show``)."""
    return {k[len(PREFIX) :]: v.decode(errors="replace") for k, v in headers if k.startswith(PREFIX)}


def original_headers(headers: Sequence[Header]) -> list[Header]:
    return [(k, v) for k, v in headers if not k.startswith(PREFIX)]


def record_size(key: bytes | None, value: bytes | None, headers: Sequence[Header]) -> int:
    """The size aiokafka's producer checks against ``max_request_size`` (a batch of one record)."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers))
    return size


@dataclass(frozen=True)
class Letter:
    """What goes to the DLQ for one poison record; ``form`` says how it differs from the record."""

    key: bytes | None
    value: bytes | None
    headers: list[Header]
    form: str  # "as_is" | "null_value" | "truncated" | "bare"


def letter(p: Poison, max_bytes: int) -> Letter:
    """The record as it came, or the closest form the broker takes (see the module docstring)."""
    headers = dlq_headers(p)
    key, value, form = p.key, p.value, "as_is"
    if key is None and value is None:  # producers need one of them; replay restores the null
        value, form = b"", "null_value"
        headers.append((NULL_VALUE, b"true"))
    if record_size(key, value, headers) <= max_bytes:
        return Letter(key, value, headers, form)
    whole = value or b""
    headers += [(TRUNCATED, str(len(whole)).encode()), (VALUE_SHA256, _sha256(whole))]
    keep = len(whole) - (record_size(key, whole, headers) - max_bytes) - SIZE_SLACK
    if keep >= 0 and record_size(key, whole[:keep], headers) <= max_bytes:
        return Letter(key, whole[:keep], headers, "truncated")
    return bare(p, f"record of {record_size(p.key, p.value, p.headers)} bytes exceeds {max_bytes}")


def bare(p: Poison, reason: str) -> Letter:
    """The form that always fits: no key, an empty value, our headers only, and why."""
    headers = [h for h in dlq_headers(p) if h[0].startswith(PREFIX)]
    headers += [(PAYLOAD_DROPPED, reason[:MAX_MESSAGE].encode())]
    if p.value is not None:
        headers += [(VALUE_SHA256, _sha256(p.value))]
    return Letter(None, b"", headers, "bare")


def replayable(headers: Sequence[Header]) -> bool:
    """A dead letter that holds its record as it came (not null/null, truncated or dropped)."""
    return not {k for k, _ in headers} & {NULL_VALUE, TRUNCATED, PAYLOAD_DROPPED}


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode()
