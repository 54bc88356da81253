"""The orders service's outbox payload contract: ``schemas/orders/outbox/<EventType>Payload.avsc``.

The outbox carries JSON, so the contract is checked here rather than by a registry: a payload
whose fields are missing or mistyped raises ``TransformError`` and is dead-lettered (the load
generator and the integration tests write payloads that pass). Unknown event types have no
contract and yield no event (counted by the handler registry, not dead-lettered).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.validation import ValidationError, validate

import streams
from streams.project import TransformError

CONTRACTS = Path(streams.__file__).resolve().parent.parent / "schemas" / "orders" / "outbox"
EVENT_TYPES = ("OrderPlaced", "OrderStatusChanged", "OrderCancelled")
_CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217; Avro has no pattern type


@cache
def payload_schema(event_type: str) -> Any:
    """The parsed contract of one event type (read once per process)."""
    text = (CONTRACTS / f"{event_type}Payload.avsc").read_text(encoding="utf-8")
    return parse_schema(json.loads(text))


def check_payload(event_type: str, payload: Mapping[str, Any], where: str) -> None:
    """Raise ``TransformError`` naming every violation of ``event_type``'s payload contract."""
    problems: list[str] = []
    try:
        validate(dict(payload), payload_schema(event_type), raise_errors=True)
    except ValidationError as exc:
        problems += [str(p) for p in exc.errors]
    # Avro's long accepts Python's bool (a subclass of int); a JSON true is never an id.
    problems += [f"{k} is a boolean" for k, v in payload.items() if isinstance(v, bool)]
    currency = payload.get("currency")
    if event_type == "OrderPlaced" and isinstance(currency, str) and not _CURRENCY.match(currency):
        problems.append(f"currency {currency!r} is not an ISO 4217 code")
    if problems:
        msg = f"outbox {event_type} payload violates {event_type}Payload.avsc at {where}: {problems}"
        raise TransformError(msg)
