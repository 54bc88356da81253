"""Helpers shared by the Connect integration tests: topic watermarks, definitions on disk."""

from __future__ import annotations

import json
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from streams.connect.definitions import ConnectorDefinition
from streams.settings import Settings


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
