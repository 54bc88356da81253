"""An outbox payload that violates its contract is dead-lettered; the rest keeps flowing."""

from __future__ import annotations

import json
from typing import Any

from streams.demo.project import demo_registry
from streams.errors import MessageOrigin
from streams.pipeline import Pipeline
from streams.pipeline.handle import Handler
from streams.sinks.batch import Batch
from tests.unit.pipeline.test_loop import FAST, FakeConsumer, FakeProducer, FakeSink, Rec

TOPIC = "outbox.event.order"


class JsonDecoder:
    """Stands in for Avro: the EventRouter's value is an Avro string holding the JSON payload."""

    def decode(self, data: bytes, origin: MessageOrigin | None = None) -> Any:
        return data.decode()

    def row_types(self, data: bytes | None) -> dict[str, str]:
        return {}


def outbox(offset: int, event_type: str, payload: dict[str, Any]) -> Rec:
    headers = [("eventType", event_type.encode()), ("eventId", f"id-{offset}".encode())]
    return Rec(offset, TOPIC, 0, 1_700_000_000_000, b"6", json.dumps(payload).encode(), headers)


async def test_contract_violations_go_to_the_dlq_with_headers() -> None:
    sink = FakeSink([])
    sink.batch = Batch()
    handler = Handler(JsonDecoder(), demo_registry(), None, sink)  # type: ignore[arg-type]
    p = Pipeline(FakeConsumer(), FakeProducer(), sink, handler, FAST)  # type: ignore[arg-type]
    good = {"order_id": 6, "customer_id": 1, "total_minor": 5, "item_count": 1, "currency": "EUR"}
    records = [
        outbox(0, "OrderPlaced", good),
        outbox(1, "OrderPlaced", {k: v for k, v in good.items() if k != "currency"}),
        outbox(2, "OrderStatusChanged", {"order_id": 6, "status": "shipped"}),
    ]
    result = await p.process(records)  # type: ignore[arg-type]
    assert result.offsets == {(TOPIC, 0): 3}
    ((topic, headers),) = p.producer.sent
    assert topic == TOPIC + ".dlq"
    h = dict(headers)
    assert h["cf_source_offset"] == b"1"
    assert b"OrderPlacedPayload.avsc" in h["cf_error_message"]
    assert h["cf_error_class"] == b"TransformError"
