"""Stage ceilings on the same replay topics: raw consume, consume + decode, raw PostgreSQL upsert."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from bench.plainloop import BATCH, Change, consumer, ddl, to_change, write
from bench.replay import drop_schema
from streams.codecs import AvroDecoder
from streams.registry.client import RegistryClient
from streams.settings import Settings
from streams.sinks import conninfo_from


def _consume(
    settings: Settings, ends: dict[str, int], group: str, decode: bool
) -> tuple[float, list[Change]]:
    c = consumer(settings.kafka.bootstrap_servers, group, ends)
    decoder = AvroDecoder(RegistryClient(settings.registry.url)) if decode else None
    done = dict.fromkeys(ends, 0)
    changes: list[Change] = []
    started: float | None = None
    try:
        while any(done[t] < ends[t] for t in ends):
            msgs = c.consume(BATCH, timeout=1.0)
            if msgs and started is None:
                started = time.perf_counter()  # connection and assignment left out
            for m in msgs:
                if m.error():
                    continue
                at = int(m.offset() or 0)
                done[str(m.topic())] = at + 1
                raw = m.value()
                if decoder is not None and raw is not None:
                    ch = to_change(decoder.decode(raw), at)
                    if ch is not None:
                        changes.append(ch)
        return time.perf_counter() - (started or time.perf_counter()), changes
    finally:
        c.close()


def measure_limits(settings: Settings, wl: str, rep: int, ends: dict[str, int]) -> dict[str, Any]:
    total = sum(ends.values())
    raw_s, _ = _consume(settings, ends, f"bench-raw-{wl}-{rep}", decode=False)
    dec_s, changes = _consume(settings, ends, f"bench-dec-{wl}-{rep}", decode=True)
    dsn = conninfo_from(settings.sink_postgres)
    schema = f"bench_pgup_{wl}_{rep}"
    drop_schema(dsn, schema)
    with psycopg.connect(dsn) as conn:
        for stmt in ddl(schema):
            conn.execute(stmt)
        conn.commit()
        t0 = time.perf_counter()
        for lo in range(0, len(changes), BATCH):
            write(conn, schema, changes[lo : lo + BATCH], {"x": lo})
        up_s = time.perf_counter() - t0
    drop_schema(dsn, schema)
    return {
        "workload": wl,
        "rep": rep,
        "events": total,
        "kafka_consume_ev_s": total / max(raw_s, 1e-3),
        "consume_decode_ev_s": total / max(dec_s, 1e-3),
        "pg_upsert_ev_s": total / max(up_s, 1e-3),  # events' worth of pre-decoded changes
    }
