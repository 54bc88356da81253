"""Dead letters: the poison record's own bytes on ``<topic>.dlq`` with headers saying why.

Headers (all UTF-8 text): ``cf_error_class``, ``cf_error_message``, ``cf_source_topic``,
``cf_source_partition``, ``cf_source_offset``, ``cf_source_timestamp`` (the record's Kafka
timestamp, ms); the record's original headers follow so a replay can restore them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from streams.cdc import dlq_topic

log = logging.getLogger(__name__)
PREFIX = "cf_"
# Enough to diagnose; a message that embeds a 1 MB value must not make a 1 MB header.
MAX_MESSAGE = 2000
Header = tuple[str, bytes]


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
