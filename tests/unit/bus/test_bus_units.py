"""The bus's pure parts: typed records, CloudEvents from headers, dead-letter form, handlers,
and the stack's NATS/Redis service definitions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from nats.errors import ConnectionClosedError, MaxPayloadError
from nats.errors import TimeoutError as NatsTimeout

from streams.bus.bridges import CloudEvent, NatsBridge, RedisBridge
from streams.bus.dlq import headers_of, poison_of
from streams.bus.handlers import Handlers
from streams.bus.records import CustomerEmailChanged, OrderPlaced, UnknownEvent, record_of
from streams.bus.retry import Backoff
from streams.errors import ConfigError
from streams.pipeline.deadletter import dlq_headers, parse_headers
from streams.settings import Settings
from streams.stack.bus import bus_services, redis_conf
from streams.stack.paths import StackPaths
from streams.stack.services import StackContext


def _envelope(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "e1", "type": kind, "source": "s", "time": datetime(2026, 1, 1, tzinfo=UTC),
        "subject": "7", "version": 3, "position": {"system": "POSTGRESQL"}, "data": data,
    }  # fmt: skip


def test_record_of_picks_the_typed_class_by_cloudevents_type() -> None:
    e = record_of(
        _envelope("dev.changefeed.customers.CustomerEmailChanged", {"customer_id": 7, "new_email": "a@b"})
    )
    assert isinstance(e, CustomerEmailChanged)
    assert (e.data.customer_id, e.data.new_email, e.data.old_email) == (7, "a@b", None)
    o = record_of(
        _envelope(
            "dev.changefeed.orders.OrderPlaced",
            {"order_id": 1, "customer_id": 2, "total_minor": 300, "currency": "EUR", "item_count": 1},
        )
    )
    assert isinstance(o, OrderPlaced)
    assert o.data.total_minor == 300


def test_an_unknown_type_decodes_with_its_data_as_a_dict() -> None:
    e = record_of(_envelope("dev.example.Future", {"x": 1}))
    assert isinstance(e, UnknownEvent)
    assert e.data == {"x": 1}


def test_cloud_event_from_kafka_headers() -> None:
    headers = [
        ("ce_id", b"abc"),
        ("ce_type", b"T"),
        ("ce_source", b"s"),
        ("content-type", b"application/avro"),
    ]
    e = CloudEvent.from_headers(headers, b"\x00body")
    assert (e.id, e.type, e.data) == ("abc", "T", b"\x00body")
    assert e.attributes == {"id": "abc", "type": "T", "source": "s", "datacontenttype": "application/avro"}


def test_an_event_without_cloudevents_id_is_poison() -> None:
    with pytest.raises(ValueError, match="ce_id"):
        CloudEvent.from_headers([("ce_type", b"T")], b"x")


def test_poison_of_a_faust_message_keeps_the_materializers_letter_format() -> None:
    message = SimpleNamespace(
        topic="domain.customers", partition=2, offset=41, timestamp=1700000000.5,
        key=b"7", value=b"junk", headers={"ce_id": b"abc"},
    )  # fmt: skip
    p = poison_of(message, ValueError("bad"))
    assert p.dlq_topic == "domain.customers.dlq"
    assert headers_of(message) == [("ce_id", b"abc")]
    ours = parse_headers(dlq_headers(p))
    assert ours["source_offset"] == "41"
    assert ours["source_timestamp"] == "1700000000500"
    assert ours["error_class"] == "ValueError"


def test_two_handlers_of_one_name_are_refused() -> None:
    handlers = Handlers()

    async def fn(tx: Any, event: Any) -> None:
        return None

    handlers.on("T", name="n")(fn)
    with pytest.raises(ConfigError, match="named 'n'"):
        handlers.on("U", name="n")(fn)


def test_bus_servers_run_only_when_enabled_and_down_knows_both(tmp_path: Path) -> None:
    off = Settings.model_construct()
    assert bus_services(off) == []
    assert [s.name for s in bus_services(off, every=True)] == ["nats", "redis"]
    on = off.model_copy(
        update={"bus": off.bus.model_copy(update={"nats": off.bus.nats.model_copy(update={"enabled": True})})}
    )
    assert [(s.name, s.port) for s in bus_services(on)] == [("nats", 14222)]


def test_the_servers_command_lines_name_the_state_dir(tmp_path: Path) -> None:
    """The pid checks recognize a process as the stack's by its state dir in the command line."""
    ctx = StackContext(Settings.model_construct(), StackPaths(tmp_path / "state", tmp_path / "cache"))
    nats, redis = bus_services(ctx.settings, every=True)
    assert str(ctx.paths.state) in " ".join(nats.argv(ctx))
    assert str(ctx.paths.state) in " ".join(redis.argv(ctx))
    conf = redis_conf(ctx)
    assert "set-proc-title no" in conf  # else Redis rewrites its command line
    assert "bind 127.0.0.1" in conf
    assert "port 16379" in conf


def test_an_event_over_nats_max_payload_is_poison_not_retried_forever() -> None:
    """MaxPayloadError never goes away by retrying (the server's max_payload must change): the
    bridge's step raises it to the agent, which dead-letters the event and goes on."""
    assert not NatsBridge.transient(MaxPayloadError())
    for exc in (NatsTimeout(), ConnectionClosedError(), OSError("refused")):
        assert NatsBridge.transient(exc), exc
    assert RedisBridge.transient(OSError("refused"))


async def test_backoff_raises_a_non_transient_error_at_once() -> None:
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("deterministic")

    with pytest.raises(ValueError, match="deterministic"):
        await Backoff(0.01, 0.01).retry("x", call, lambda e: not isinstance(e, ValueError))
    assert calls == 1
