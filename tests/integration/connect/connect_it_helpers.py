"""Helpers shared by the Connect integration tests: polling with deadlines, topic watermarks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.connect.definitions import ConnectorDefinition
from streams.settings import Settings


def poll(check: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.5) -> object:
    """Return check()'s first truthy value; fail with ``what`` at the deadline (no blind sleeps)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def high_watermark(settings: Settings, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "it-watermarks"})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return 0
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.partitions
        )
    finally:
        consumer.close()


def write_definition(directory: Path, definition: ConnectorDefinition) -> Path:
    """Write a rendered definition as a file the CLI can load (no templates left to render)."""
    path = directory / f"{definition.name}.json"
    path.write_text(json.dumps({"name": definition.name, "config": definition.config}))
    return path
