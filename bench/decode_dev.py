"""Record → ChangeEvent CPU, offline: a captured batch of a replay topic, decoded and parsed in-process.

``bench.dev run`` measures the whole worker; this isolates what ``Handler.handle`` does before the
sink (decode key and value, parse the envelope) with each reader (``[worker] avro_reader``: the
native one, the compiled one of ``streams.codecs.fastread``, fastavro's), and checks all give the
same values; then the encoding of domain events (the demo's CustomerRegistered, as registered)
with the native writer and fastavro's. Needs only Kafka and the registry of the running stack
(one read of the topic, then no I/O):

    python -m bench.decode_dev --ends /tmp/replay.json --workload ins [-n 30000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.cdc import parse_change_event
from streams.codecs import AvroDecoder, AvroEncoder
from streams.codecs.avro import ReaderKind
from streams.registry.client import RegistryClient
from streams.settings import load_settings

Captured = list[tuple[str, int, int, bytes | None, bytes | None]]


def capture(bootstrap: str, topic: str, n: int) -> Captured:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-decode-dev", "enable.auto.commit": False}
    )
    c.assign([TopicPartition(topic, 0, 0)])
    out: Captured = []
    try:
        while len(out) < n:
            batch = c.consume(5000, timeout=5)
            if not batch:
                break
            out += [
                (m.topic(), m.partition(), m.offset(), m.key(), m.value()) for m in batch if not m.error()
            ]
    finally:
        c.close()
    return out[:n]


def run(records: Captured, decoder: AvroDecoder) -> list[Any]:
    out = []
    for topic, partition, offset, k, v in records:
        key = None if k is None else decoder.decode(k)
        value = None if v is None else decoder.decode(v)
        types = decoder.row_types(v)
        out.append(
            parse_change_event(
                value, key=key, topic=topic, partition=partition, offset=offset, logical_types=types
            )
        )
    return out


def best_of(fn: Callable[[], Any], reps: int = 5) -> float:
    best = float("inf")
    for _ in range(reps):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ends", type=Path, required=True)
    ap.add_argument("--workload", default="ins")
    ap.add_argument("-n", type=int, default=30_000)
    args = ap.parse_args()
    s = load_settings()
    topic = next(iter(json.loads(args.ends.read_text())[args.workload]))
    records = capture(s.kafka.bootstrap_servers, topic, args.n)
    registry = RegistryClient(s.registry.url)
    kinds: tuple[ReaderKind, ...] = ("fastavro", "compiled", "native")
    decoders = {kind: AvroDecoder(registry, reader=kind) for kind in kinds}
    expected = [vars(e) for e in run(records, decoders["fastavro"])]
    for kind in kinds:
        assert [vars(e) for e in run(records, decoders[kind])] == expected, kind
        cpu = best_of(lambda d=decoders[kind]: run(records, d))  # type: ignore[misc]
        print(f"{kind}: {cpu / len(records) * 1e6:.2f} us per record (decode key + value, parse)")
    print(f"{len(records):,} records of {topic}, identical ChangeEvents")
    encode(registry, len(records))


def encode(registry: RegistryClient, n: int) -> None:
    subject = "domain.customers-dev.changefeed.customers.CustomerRegistered"
    latest = registry.latest(subject)
    assert latest is not None, f"{subject} is not registered: run `changefeed schemas register`"
    rng = random.Random(1)  # noqa: S311 - test data, not secrets
    events = [
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "type": "dev.changefeed.customers.CustomerRegistered",
            "source": "customers-postgres/public.customers",
            "time": datetime(2026, 11, 30, 22, 0, 0, rng.randrange(10**6), tzinfo=UTC),
            "subject": str(i),
            "version": rng.randrange(2**62),
            "position": {"system": "POSTGRESQL", "commit_lsn": rng.randrange(2**40), "lsn": 8, "tx_id": 7},
            "data": {"customer_id": i, "email": f"c{i}@x.test", "full_name": "A B", "country": None},
        }
        for i in range(n)
    ]
    encoders = {
        name: AvroEncoder.for_source(latest.schema_id, latest.source, registry, native=name == "native")
        for name in ("fastavro", "native")
    }
    assert [encoders["native"].encode(e) for e in events] == [encoders["fastavro"].encode(e) for e in events]
    for name, encoder in encoders.items():
        cpu = best_of(lambda en=encoder: [en.encode(e) for e in events])  # type: ignore[misc]
        print(f"{name}: {cpu / n * 1e6:.2f} us per domain event (encode)")
    print(f"{n:,} {subject} events, identical bytes")


if __name__ == "__main__":
    main()
