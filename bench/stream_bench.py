"""Single-worker throughput: Kafka → committed sink rows, on a private backlog of crafted events.

Usage: .venv/bin/python -m bench.stream_bench [events]  (real stack; cleans up after itself)
Measures from the worker's first committed flush to its last (startup excluded), by polling the
sink's stored offsets; the backlog is customers change events over 5,000 keys.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.settings import load_settings
from streams.sinks import conninfo_from
from tests.integration.streams.helpers import Crafter, Worker, end_offsets, stored_offsets


def main(events: int) -> None:
    s = load_settings()
    topic, schema, group = (
        f"bench{uuid.uuid4().hex[:6]}.public.customers",
        f"bench_{uuid.uuid4().hex[:6]}",
        "bench",
    )
    admin = KafkaAdminClient(bootstrap_servers=s.kafka.bootstrap_servers)
    admin.create_topics([NewTopic(topic, 1, 1)])
    crafter = Crafter(s)
    for i in range(events):
        key, value = crafter.message(1 + i % 5000, 10_000 + i, "c" if i < 5000 else "u")
        crafter.producer.send(topic, key=key, value=value)
    crafter.producer.flush()
    total = sum(end_offsets(s, topic).values())
    with psycopg.connect(conninfo_from(s.sink_postgres), autocommit=True) as sink:
        sink.execute(f'CREATE SCHEMA "{schema}"')
        w = Worker(group, schema, Path(tempfile.mkdtemp()) / "bench.log", [topic])
        try:
            first = None
            while True:
                done = sum(stored_offsets(sink, schema, group, topic).values())
                if done and first is None:
                    first = (time.monotonic(), done)
                if done >= total:
                    break
                time.sleep(0.05)
            assert first is not None
            elapsed = time.monotonic() - first[0]
            n = total - first[1]
            print(
                f"{total} events; first flush {first[1]}; {n} events in {elapsed:.2f} s"
                f" = {n / elapsed:,.0f} ev/s"
            )
        finally:
            w.stop()
            sink.execute(f'DROP SCHEMA "{schema}" CASCADE')
            admin.delete_topics([t for t in admin.list_topics() if t.startswith(topic)])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 25_000)
