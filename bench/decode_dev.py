"""Record → ChangeEvent CPU, offline: a captured batch of a replay topic, decoded and parsed in-process.

``bench.dev run`` measures the whole worker; this isolates what ``Handler.handle`` does before the
sink (decode key and value, parse the envelope), with fastavro's reader and with the compiled one
(``streams.codecs.fastread``), and checks both give the same values. Needs only Kafka and the
registry of the running stack (one read of the topic, then no I/O):

    python -m bench.decode_dev --ends /tmp/replay.json --workload ins [-n 30000]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streams.cdc import parse_change_event
from streams.codecs import AvroDecoder
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
    compiled, plain = AvroDecoder(registry), AvroDecoder(registry)
    run(records[:10], plain)
    plain._compiled = {i: None for i in plain._compiled}  # fastavro for every schema
    run(records[:10], compiled)
    assert [vars(e) for e in run(records, compiled)] == [vars(e) for e in run(records, plain)]
    for name, decoder in (("fastavro", plain), ("compiled", compiled)):
        cpu = best_of(lambda d=decoder: run(records, d))  # type: ignore[misc]
        print(f"{name}: {cpu / len(records) * 1e6:.2f} us per record (decode key + value, parse)")
    print(f"{len(records):,} records of {topic}, identical ChangeEvents")


if __name__ == "__main__":
    main()
