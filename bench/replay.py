"""Identical data for every peer: each workload's change-topic range copied into its own topics.

The copy keeps the raw bytes (Avro with the same schema ids), keys and tombstones. A sink clock
(statement-level trigger attached by an event trigger to every table created in a ``bench_*``
schema) stamps the first and last data write of each peer's schema; peers are timed by it.
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported from cimpl

CLOCK_DDL = r"""
CREATE TABLE IF NOT EXISTS public.bench_clock (
    schema_name text PRIMARY KEY, first_at timestamptz, last_at timestamptz, statements bigint NOT NULL);
-- SECURITY DEFINER: the triggers fire in the peers' sessions, and changefeed writes with its own
-- sink login, which may not write the benchmark's public tables.
CREATE OR REPLACE FUNCTION public.bench_tick() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  INSERT INTO public.bench_clock AS c VALUES (TG_TABLE_SCHEMA, clock_timestamp(), clock_timestamp(), 1)
  ON CONFLICT (schema_name) DO UPDATE SET last_at = clock_timestamp(), statements = c.statements + 1;
  RETURN NULL;
END $$;
CREATE TABLE IF NOT EXISTS public.bench_first (
    schema_name text, topic text, next_offset bigint NOT NULL, xact bigint NOT NULL,
    PRIMARY KEY (schema_name, topic));
CREATE OR REPLACE FUNCTION public.bench_first_offset() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  INSERT INTO public.bench_first VALUES (TG_TABLE_SCHEMA, NEW.topic, NEW.next_offset, txid_current())
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION public.bench_attach() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
           WHERE command_tag = 'CREATE TABLE' AND schema_name LIKE 'bench\_%'
             AND (object_identity LIKE '%.changefeed\_offsets' OR object_identity LIKE '%.plain\_offsets')
  LOOP
    EXECUTE format('CREATE TRIGGER bench_first AFTER INSERT OR UPDATE ON %s'
                   ' FOR EACH ROW EXECUTE FUNCTION public.bench_first_offset()', r.object_identity);
  END LOOP;
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
           WHERE command_tag = 'CREATE TABLE' AND schema_name LIKE 'bench\_%'
             AND object_identity NOT LIKE '%.changefeed\_%' AND object_identity NOT LIKE '%.plain\_%'
  LOOP
    EXECUTE format('CREATE TRIGGER bench_tick AFTER INSERT OR UPDATE OR DELETE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION public.bench_tick()', r.object_identity);
  END LOOP;
END $$;
DROP EVENT TRIGGER IF EXISTS bench_attach;
CREATE EVENT TRIGGER bench_attach ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION public.bench_attach();
"""


def install_clock(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(CLOCK_DDL)


def clock(conn: psycopg.Connection[Any], schema: str) -> tuple[float, float, int] | None:
    """(first write, last write) as epoch seconds and the statement count, once anything was written."""
    row = conn.execute(
        "SELECT extract(epoch FROM first_at), extract(epoch FROM last_at), statements"
        " FROM public.bench_clock WHERE schema_name = %s",
        (schema,),
    ).fetchone()
    conn.rollback()
    return (float(row[0]), float(row[1]), int(row[2])) if row else None


def first_batch(conn: psycopg.Connection[Any], schema: str) -> int:
    """Events in a peer's first committed batch: the offsets its offsets table stored in its first
    transaction (changefeed and the plain loop store offsets with the rows; 0 for the JDBC sink)."""
    row = conn.execute(
        "SELECT coalesce(sum(next_offset), 0) FROM public.bench_first WHERE schema_name = %s"
        " AND xact = (SELECT min(xact) FROM public.bench_first WHERE schema_name = %s)",
        (schema, schema),
    ).fetchone()
    conn.rollback()
    return int(row[0]) if row else 0


def replay_topic(workload: str, source_topic: str, run: str) -> str:
    """``bw<run>_<workload>_<table>``: new per run, so no committed group offset or old data applies."""
    return f"bw{run}_{workload}_{source_topic.split('.')[-1]}"


def register_subjects(registry_url: str, target: str, key_ids: set[int], value_ids: set[int]) -> None:
    """Confluent's AvroConverter (the JDBC sink) looks ids up under ``<topic>-key|value``
    (TopicNameStrategy): register the copied records' schemas there (same schema, same id)."""
    with httpx.Client(base_url=registry_url, timeout=30) as http:
        for suffix, ids in (("key", key_ids), ("value", value_ids)):
            for sid in sorted(ids):
                schema = http.get(f"/schemas/ids/{sid}").raise_for_status().json()["schema"]
                http.post(f"/subjects/{target}-{suffix}/versions", json={"schema": schema}).raise_for_status()


# Kafka's Java producer (Debezium's, through Connect) puts a keyed record on murmur2(key bytes) mod
# partitions; librdkafka's murmur2_random is the same function, so a partitioned copy keeps each
# primary key on the partition Debezium would have chosen for a topic created with that many.
JAVA_PARTITIONER = "murmur2_random"


def copy_range(
    bootstrap: str,
    source: str,
    target: str,
    start: int,
    end: int,
    registry_url: str = "",
    partitions: int = 1,
) -> int:
    """Copy offsets [start, end) of partition 0 of ``source`` into a fresh ``target`` of ``partitions``
    partitions (byte for byte; keyed records hashed to partitions as Kafka's Java producer does)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(target, partitions, 1)]).values():
        f.result()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-copy-{target}",
            "enable.auto.commit": False,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,  # 400k-event replays: big fetches
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.size": 1024 * 1024,
            "acks": "all",
            "partitioner": JAVA_PARTITIONER,
        }
    )
    consumer.assign([TopicPartition(source, 0, start)])
    copied, offset = 0, start
    key_ids: set[int] = set()
    value_ids: set[int] = set()
    try:
        while offset < end:
            for msg in consumer.consume(1000, timeout=5.0):
                if msg.error():
                    continue
                at = int(msg.offset() or 0)
                offset = at + 1
                if at >= end:
                    break
                producer.produce(target, key=msg.key(), value=msg.value())
                for raw, ids in ((msg.key(), key_ids), (msg.value(), value_ids)):
                    if raw and len(raw) >= 5 and raw[0] == 0:  # Confluent framing: magic 0 + 4-byte id
                        ids.add(int.from_bytes(raw[1:5], "big"))
                copied += 1
                if copied % 10_000 == 0:
                    producer.flush()
        producer.flush()
    finally:
        consumer.close()
    if registry_url:
        register_subjects(registry_url, target, key_ids, value_ids)
    return copied


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute("DELETE FROM public.bench_clock WHERE schema_name = %s", (schema,))
        conn.execute("DELETE FROM public.bench_first WHERE schema_name = %s", (schema,))
