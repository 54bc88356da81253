"""Table transforms run only when domain events are published (they only make domain events)."""

from __future__ import annotations

from typing import Any

from streams.cdc import ChangeEvent
from streams.errors import MessageOrigin, TransformError
from streams.pipeline.handle import Handler
from streams.project.events import DomainEvent
from streams.project.handlers import HandlerRegistry
from tests.unit.cdc.test_cdc_envelope import envelope
from tests.unit.pipeline.test_loop import Rec

TOPIC = "cf.public.customers"


class DictDecoder:
    """Stands in for Avro: the record's bytes name the decoded value the test gives it."""

    def __init__(self, values: dict[bytes, Any]) -> None:
        self.values = values

    def decode(self, data: bytes, origin: MessageOrigin | None = None) -> Any:
        return self.values[data]

    def row_types(self, data: bytes | None) -> dict[str, str]:
        return {}

    def row_fields(self, data: bytes | None) -> None:
        return None


class Sink:
    def __init__(self) -> None:
        self.added: list[ChangeEvent] = []

    def add(self, partition: int, change: ChangeEvent, *rest: Any) -> None:
        self.added.append(change)


def rejecting(calls: list[ChangeEvent]) -> HandlerRegistry:
    def transform(change: ChangeEvent) -> list[DomainEvent]:
        calls.append(change)
        raise TransformError("rejected")

    registry = HandlerRegistry()
    registry.table("public.customers", transform, publishes=["domain.customers"])
    return registry


def handler(calls: list[ChangeEvent], encoders: Any) -> tuple[Handler, Sink]:
    decoder = DictDecoder({b"k": {"id": 1}, b"v": envelope("c", after={"id": 1, "email": "a"})})
    sink = Sink()
    return Handler(decoder, rejecting(calls), encoders, sink), sink  # type: ignore[arg-type]


def test_not_publishing_the_row_is_buffered_without_running_the_transform() -> None:
    calls: list[ChangeEvent] = []
    h, sink = handler(calls, None)
    assert h.handle(Rec(0, TOPIC, key=b"k", value=b"v")) == []
    assert calls == []
    assert [c.after for c in sink.added] == [{"id": 1, "email": "a"}]


def test_publishing_the_transform_runs_and_its_rejection_is_the_records_poison() -> None:
    calls: list[ChangeEvent] = []
    h, _ = handler(calls, object())
    try:
        h.handle(Rec(0, TOPIC, key=b"k", value=b"v"))
    except TransformError:
        pass
    else:
        raise AssertionError("the transform's rejection did not surface")
    assert len(calls) == 1


class CountingDecoder(DictDecoder):
    def __init__(self, values: dict[bytes, Any]) -> None:
        super().__init__(values)
        self.decoded: list[bytes] = []

    def decode(self, data: bytes, origin: MessageOrigin | None = None) -> Any:
        self.decoded.append(data)
        return super().decode(data, origin)


def test_keys_and_values_decoded_ahead_are_used_once_then_decoded_again() -> None:
    decoder = CountingDecoder({b"k": {"id": 1}, b"v": envelope("c", after={"id": 1, "email": "a"})})
    sink = Sink()
    h = Handler(decoder, rejecting([]), None, sink)  # type: ignore[arg-type]
    h._keys[(TOPIC, 0, 5)] = {"id": 2}
    h.values[(TOPIC, 0, 5)] = envelope("c", after={"id": 2, "email": "ahead"})
    h.values[(TOPIC, 0, 6)] = None  # decoded ahead as nothing (a tombstone): not decoded again
    h.handle(Rec(5, TOPIC, key=b"k", value=b"v"))
    assert decoder.decoded == []
    assert h._keys == {}
    assert h.values == {(TOPIC, 0, 6): None}
    h.handle(Rec(6, TOPIC, key=b"k", value=b"v"))
    assert decoder.decoded == [b"k"]
    assert h.values == {}
    h.handle(Rec(5, TOPIC, key=b"k", value=b"v"))  # redelivered: decoded this time
    assert decoder.decoded == [b"k", b"k", b"v"]
    assert [(c.tombstone, c.after) for c in sink.added] == [
        (False, {"id": 2, "email": "ahead"}),
        (True, None),
        (False, {"id": 1, "email": "a"}),
    ]


class Previous:
    """Stands in for PreviousRows: records which keys prefetch asks the sink for."""

    def __init__(self) -> None:
        self.tables = {"public.customers": frozenset({"email"})}
        self.asked: list[dict[str, list[Any]]] = []

    async def prefetch(self, keys: dict[str, list[Any]]) -> None:
        self.asked.append({t: list(k) for t, k in keys.items()})

    def fill(self, change: ChangeEvent) -> ChangeEvent:
        return change


def test_prefetch_asks_the_sink_only_for_updates_without_a_before_image_and_decodes_once() -> None:
    import asyncio

    values = {
        b"ins": envelope("c", after={"id": 1, "email": "a"}),
        b"upd": envelope("u", after={"id": 2, "email": "b"}),
        b"upd-before": envelope("u", before={"id": 3, "email": "c"}, after={"id": 3, "email": "d"}),
        b"del": envelope("d", before={"id": 4, "email": "e"}),
    }
    keys = {b"k1": {"id": 1}, b"k2": {"id": 2}, b"k3": {"id": 3}, b"k4": {"id": 4}}
    decoder = CountingDecoder({**values, **keys})
    previous = Previous()
    h = Handler(decoder, HandlerRegistry(), object(), Sink(), previous)  # type: ignore[arg-type]
    h._tables[TOPIC] = "public.customers"
    records = [Rec(i, TOPIC, key=k, value=v) for i, (k, v) in enumerate(zip(keys, values, strict=True))]
    asyncio.run(h.prefetch(records))
    assert previous.asked == [{"public.customers": [{"id": 2}]}]
    assert sorted(h.values) == [(TOPIC, 0, i) for i in range(4)]
    for r in records:
        h.handle(r)
    assert sorted(decoder.decoded) == sorted([*keys, *values])  # each once, in prefetch


def test_records_decoded_ahead_are_adopted_by_prefetch_and_not_decoded_again() -> None:
    import asyncio

    values = {
        b"ins": envelope("c", after={"id": 1, "email": "a"}),
        b"upd": envelope("u", after={"id": 2, "email": "b"}),
    }
    keys = {b"k1": {"id": 1}, b"k2": {"id": 2}}
    decoder = CountingDecoder({**values, **keys})
    previous = Previous()
    h = Handler(decoder, HandlerRegistry(), object(), Sink(), previous)  # type: ignore[arg-type]
    h._tables[TOPIC] = "public.customers"
    records = [Rec(0, TOPIC, key=b"k1", value=b"ins"), Rec(1, TOPIC, key=b"k2", value=b"upd")]
    # Read ahead: a record that fails to decode (an unknown schema, say) is left for handle().
    broken = Rec(2, TOPIC, key=b"k1", value=b"not-avro")
    ahead_keys: dict[Any, Any] = {}
    ahead_values: dict[Any, Any] = {}
    h.decode_into([*records, broken], ahead_keys, ahead_values)
    assert sorted(ahead_values) == [(TOPIC, 0, 0), (TOPIC, 0, 1)]
    assert decoder.decoded == [b"k1", b"ins", b"k2", b"upd", b"k1", b"not-avro"]
    decoder.decoded.clear()
    asyncio.run(h.prefetch(records, (ahead_keys, ahead_values)))
    assert previous.asked == [{"public.customers": [{"id": 2}]}]  # the update, from what was read ahead
    for r in records:
        h.handle(r)
    assert decoder.decoded == []  # nothing decoded twice
    assert h._keys == {}
    assert h.values == {}
