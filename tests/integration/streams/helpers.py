"""Helpers for the streams tests: worker subprocesses, crafted Debezium messages, sink reads."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.codecs import AvroDecoder, AvroEncoder
from streams.codecs.schemas import WriterSchemas
from streams.codecs.wire import schema_id_of
from streams.errors import DecodeError
from streams.registry.client import RegistryClient
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[3]
SOURCE_TOPIC = "customers.public.customers"
SAMPLE_TIMEOUT_S = 120.0
SEED_AFTER_S = 10.0  # no create event on the customers topic by then: insert a customer


def seed_customer(settings: Settings) -> None:
    """One new row in the customers source, so its connector writes a create event."""
    db = settings.source_postgres
    with psycopg.connect(host=db.host, port=db.port, user=db.user, autocommit=True,
                         password=db.password.get_secret_value(), dbname=db.database) as pg:  # fmt: skip
        pg.execute(
            "INSERT INTO customers (email, first_name, last_name) VALUES (%s, 'Sample', 'Row')",
            (f"sample-{os.getpid()}-{time.time_ns()}@it.test",),
        )


# Tests produce records up to the broker's limit (poison of several MiB).
MAX_REQUEST = 9 * 1024 * 1024


class Worker:
    """``changefeed worker`` as a real subprocess; ``stop`` sends SIGINT and waits for a clean exit."""

    def __init__(
        self,
        app_id: str,
        schema: str,
        log: Path,
        topics: list[str] | None = None,
        env_extra: dict[str, str] | None = None,
    ) -> None:
        env = {**os.environ, "CHANGEFEED_WORKER__APP_ID": app_id, "CHANGEFEED_PIPELINE__SINK_SCHEMA": schema}
        env.update(env_extra or {})
        if topics is not None:
            env["CHANGEFEED_PIPELINE__TOPICS"] = json.dumps(topics)
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [str(REPO / ".venv/bin/changefeed"), "worker"],
            cwd=REPO,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def stop(self, timeout_s: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        return {tp.partition: o for tp, o in c.end_offsets(tps).items()}
    finally:
        c.close()


def committed(settings: Settings, group: str, topic: str) -> dict[int, int]:
    c = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    try:
        parts = sorted(c.partitions_for_topic(topic) or ())
        return {p: o for p in parts if (o := c.committed(TopicPartition(topic, p))) is not None}
    finally:
        c.close()


def stored_offsets(conn: psycopg.Connection[Any], schema: str, group: str, topic: str) -> dict[int, int]:
    try:
        rows = conn.execute(
            f'SELECT partition, next_offset FROM "{schema}".changefeed_offsets'
            " WHERE consumer_group = %s AND topic = %s",
            (group, topic),
        ).fetchall()
    except psycopg.errors.UndefinedTable:
        return {}  # the worker has not created its tables yet
    return {int(p): int(o) for p, o in rows}


def _nullable(field: dict[str, Any]) -> bool:
    kind = field["type"]
    return isinstance(kind, list) and "null" in kind


def _row_fields(envelope_schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The row record's fields of a Debezium envelope schema (defined inline by ``before``,
    which comes first; ``after`` names it)."""
    before = next(f for f in envelope_schema["fields"] if f["name"] == "before")
    record = next(t for t in before["type"] if isinstance(t, dict))
    fields: list[dict[str, Any]] = record["fields"]
    return fields


class Crafter:
    """Crafts customers change events with the writer schemas of a real captured one.

    Only the schemas and the required columns come from the sampled event: every nullable column
    of a crafted row is NULL unless the test sets it, so what the topic happens to hold (after
    ``make demo``: numerics, large bios, JSON) never leaks into a test's rows or breaks it.
    """

    def __init__(self, settings: Settings, sample_topic: str = SOURCE_TOPIC) -> None:
        self.registry = RegistryClient(settings.registry.url)
        self.decoder = AvroDecoder(self.registry)
        self.writers = WriterSchemas(self.registry)
        sample = self._sample(settings, sample_topic)
        self.key_id, self.value_id = schema_id_of(sample.key), schema_id_of(sample.value)
        self.value = self.decoder.decode(sample.value)
        fields = _row_fields(self.writers.get(self.value_id))
        self.row = {f["name"]: None if _nullable(f) else self.value["after"][f["name"]] for f in fields}
        self.key_enc = AvroEncoder(self.key_id, self.writers.get(self.key_id))
        self.value_enc = AvroEncoder(self.value_id, self.writers.get(self.value_id))
        self.producer = KafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", max_request_size=MAX_REQUEST
        )

    def _sample(self, settings: Settings, topic: str) -> Any:
        """The first create/snapshot event on ``topic`` that decodes (poison is skipped)."""
        c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        start = time.monotonic()
        seeded = False
        try:
            while time.monotonic() < start + SAMPLE_TIMEOUT_S:
                for r in c.poll(5000).get(tp, []):
                    if r.key is not None and r.value is not None and self._is_create(r.value):
                        return r
                if not seeded and topic == SOURCE_TOPIC and time.monotonic() > start + SEED_AFTER_S:
                    seed_customer(settings)  # an empty stack has none: this test makes its own
                    seeded = True
        finally:
            c.close()
        # Connectors not applied (or a failed migrate) leave none.
        msg = f"no create/snapshot event on {topic} within {SAMPLE_TIMEOUT_S:.0f} s"
        raise AssertionError(msg)

    def _is_create(self, value: bytes) -> bool:
        try:
            return self.decoder.decode(value)["op"] in ("c", "r")
        except (DecodeError, KeyError, TypeError):
            return False

    def message(
        self, cid: int, lsn: int, op: str = "u", email: str | None = None, **columns: Any
    ) -> tuple[bytes, bytes]:
        """Key and value of a change of customer ``cid`` at position ``lsn`` (``columns``: other
        row values; every nullable column not given is NULL)."""
        v = copy.deepcopy(self.value)
        row = {**self.row, **columns, "id": cid, "email": email or f"c{cid}-{lsn}@it.test"}
        v["op"] = op
        v["before"], v["after"] = (row, None) if op == "d" else (None, row)
        v["source"]["sequence"] = json.dumps([str(lsn), str(lsn)])
        v["source"]["snapshot"] = "false"
        return self.key_enc.encode({"id": cid}), self.value_enc.encode(v)

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None) -> int:
        """Produce and wait for the ack; the record's offset."""
        meta = self.producer.send(topic, key=key, value=value, partition=partition).get(30)
        return int(meta.offset)

    def close(self) -> None:
        self.producer.close(5)
