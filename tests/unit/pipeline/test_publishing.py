"""Staged domain events: encoded per record, all or none, poison named by its record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.errors import ConfigError, RegistryUnavailableError, TransformError, TransientError
from streams.pipeline.events_proc import event_fields
from streams.pipeline.publishing import InlineEvents, encode_staged
from streams.project.events import DomainEvent, domain_event


def event(subject: str) -> DomainEvent:
    when = datetime(2026, 11, 30, tzinfo=UTC)
    return domain_event("t", "x.Happened", f"id-{subject}", "src", when, subject, 1, {"a": 1}, {"b": 2})


class Encoders:
    """Encodes by subject: "wide" does not fit its contract, "unregistered" has no subject."""

    def __init__(self, down: bool = False) -> None:
        self.down = down

    def encode(self, e: Any) -> bytes:
        if self.down:
            raise RegistryUnavailableError("registry away")
        if e.subject == "wide":
            raise ValueError("not a long")
        if e.subject == "unregistered":
            raise ConfigError("subject t-x.Happened is not registered")
        return b"x" * (5000 if e.subject == "big" else 10)


def test_a_record_is_encoded_all_or_none_and_its_poison_names_it() -> None:
    staged = [
        (("t", 0, 1), [event("a")]),
        (("t", 0, 2), [event("b"), event("wide")]),  # its first event is not sent either
        (("t", 0, 3), [event("big")]),
        (("t", 0, 4), [event("unregistered")]),
        (("t", 0, 5), [event("c"), event("d")]),
    ]
    out, refused = encode_staged(staged, Encoders(), max_bytes=1000)  # type: ignore[arg-type]
    assert [o.key for o in out] == [b"a", b"c", b"d"]
    assert [origin for origin, _ in refused] == [("t", 0, 2), ("t", 0, 3), ("t", 0, 4)]
    wide, big, unregistered = (exc for _, exc in refused)
    assert isinstance(wide, TransformError)
    assert "t[0]@2" in str(wide)
    assert "not a long" in str(wide)
    assert isinstance(big, TransformError)
    assert "exceeds the broker's limit (1000 bytes) at t[0]@3" in str(big)
    assert isinstance(unregistered, ConfigError)


def test_a_transient_failure_fails_the_whole_publish_not_a_record() -> None:
    with pytest.raises(TransientError):
        encode_staged([(("t", 0, 1), [event("a")])], Encoders(down=True), 1000)  # type: ignore[arg-type]


def test_inline_events_encode_once_and_send_the_same_bytes_on_a_retry() -> None:
    class FlakySender:
        def __init__(self) -> None:
            self.attempts: list[list[bytes]] = []

        async def publish(self, events: Any) -> None:
            self.attempts.append([o.key for o in events])
            if len(self.attempts) == 1:
                raise TransientError("not acked")

        async def close(self) -> None:
            return None

    sender = FlakySender()
    events = InlineEvents(sender, Encoders(), 1000)  # type: ignore[arg-type]
    events.begin()
    events.stage(("t", 0, 1), [event("a")])
    with pytest.raises(TransientError):
        asyncio.run(events.publish())
    assert asyncio.run(events.publish()) == []
    assert sender.attempts == [[b"a"], [b"a"]]
    events.begin()  # the next batch starts empty
    assert asyncio.run(events.publish()) == []
    assert len(sender.attempts) == 2


def test_event_fields_rebuild_the_same_event_in_the_publisher_process() -> None:
    e = event("a")
    assert domain_event(*event_fields(e)) == e
    assert len(event_fields(e)) == len(DomainEvent.__dataclass_fields__)
