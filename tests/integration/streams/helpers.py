"""Helpers for the streams tests: worker subprocesses, crafted Debezium messages, sink reads."""

from __future__ import annotations

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
from streams.registry.client import RegistryClient
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[3]
SOURCE_TOPIC = "customers.public.customers"
SAMPLE_TIMEOUT_S = 120.0


class Worker:
    """``changefeed worker`` as a real subprocess; ``stop`` sends SIGINT and waits for a clean exit."""

    def __init__(self, app_id: str, schema: str, log: Path, topics: list[str] | None = None) -> None:
        env = {**os.environ, "CHANGEFEED_WORKER__APP_ID": app_id, "CHANGEFEED_PIPELINE__SINK_SCHEMA": schema}
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


class Crafter:
    """Re-encodes real captured customers change events with edits (same writer schemas)."""

    def __init__(self, settings: Settings) -> None:
        self.registry = RegistryClient(settings.registry.url)
        self.decoder = AvroDecoder(self.registry)
        self.writers = WriterSchemas(self.registry)
        c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
        tp = TopicPartition(SOURCE_TOPIC, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        sample = None
        deadline = time.monotonic() + SAMPLE_TIMEOUT_S
        while sample is None and time.monotonic() < deadline:
            for r in c.poll(5000).get(tp, []):
                if r.value is not None and self.decoder.decode(r.value)["op"] in ("c", "r"):
                    sample = r
                    break
        c.close()
        if sample is None:  # a failed earlier test (migrate, connectors apply) leaves none
            msg = f"no create/snapshot event on {SOURCE_TOPIC} within {SAMPLE_TIMEOUT_S:.0f} s"
            raise AssertionError(msg)
        self.key_id, self.value_id = schema_id_of(sample.key), schema_id_of(sample.value)
        self.value = self.decoder.decode(sample.value)
        self.key_enc = AvroEncoder(self.key_id, self.writers.get(self.key_id))
        self.value_enc = AvroEncoder(self.value_id, self.writers.get(self.value_id))
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")

    def message(self, cid: int, lsn: int, op: str = "u", email: str | None = None) -> tuple[bytes, bytes]:
        """Key and value of a change of customer ``cid`` at position ``lsn``."""
        v = json.loads(json.dumps(self.value))
        row = {**v["after"], "id": cid, "email": email or f"c{cid}-{lsn}@it.test"}
        v["op"] = op
        v["before"], v["after"] = (row, None) if op == "d" else (None, row)
        v["source"]["sequence"] = json.dumps([str(lsn), str(lsn)])
        v["source"]["snapshot"] = "false"
        return self.key_enc.encode({"id": cid}), self.value_enc.encode(v)

    def send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.producer.send(topic, key=key, value=value).get(30)

    def close(self) -> None:
        self.producer.close(5)
