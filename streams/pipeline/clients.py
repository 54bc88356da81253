"""The worker's aiokafka clients' keyword arguments, sized to the broker's record limit.

aiokafka's producer refuses records over 1 MiB by default while the broker accepts
``KafkaSettings.max_message_bytes`` (8 MiB on the stack): with the default, a 2 MiB poison
record could not be dead-lettered and a 2 MiB domain event could not be published. Every
producer and consumer the worker builds takes its limits from here.
"""

from __future__ import annotations

from typing import Any

from streams.settings import KafkaSettings, WorkerSettings


def producer_kwargs(kafka: KafkaSettings, worker: WorkerSettings) -> dict[str, Any]:
    """``AIOKafkaProducer`` arguments: idempotent, acks=all, records up to the broker's limit."""
    return {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": f"{worker.app_id}-producer",
        "acks": "all",
        "enable_idempotence": True,  # a retried send does not duplicate within one session
        "linger_ms": 5,
        # aiokafka's size check counts a batch of one record (batch header included), the unit
        # the broker's message.max.bytes limits: the same number on both sides.
        "max_request_size": kafka.max_message_bytes,
    }


def fetch_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    """Fetch sizes that let a consumer read any record the broker accepted."""
    return {
        "max_partition_fetch_bytes": max(4 * 1024 * 1024, kafka.max_message_bytes),
        "fetch_max_bytes": max(50 * 1024 * 1024, kafka.max_message_bytes),
    }


def consumer_kwargs(kafka: KafkaSettings, worker: WorkerSettings) -> dict[str, Any]:
    """The worker's group consumer: manual commits after the sink, fast failover."""
    return {
        "bootstrap_servers": kafka.bootstrap_servers,
        "group_id": worker.app_id,
        "client_id": f"{worker.app_id}-consumer",
        "enable_auto_commit": False,  # commits follow the sink transaction, never a timer
        "auto_offset_reset": "earliest",  # no sink offset and no commit: start from the beginning
        "session_timeout_ms": int(worker.session_timeout_s * 1000),
        "heartbeat_interval_ms": int(worker.heartbeat_interval_s * 1000),
        # A source topic created after start joins the subscription within this time.
        "metadata_max_age_ms": 5000,
        "fetch_max_wait_ms": worker.fetch_max_wait_ms,
        **fetch_kwargs(kafka),
    }


def reader_kwargs(kafka: KafkaSettings, client_id: str) -> dict[str, Any]:
    """A group-less consumer that reads a topic by assignment (the dead-letter index)."""
    return {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": client_id,
        "group_id": None,
        "enable_auto_commit": False,
        **fetch_kwargs(kafka),
    }


def events_producer_config(kafka: KafkaSettings, worker: WorkerSettings) -> dict[str, Any]:
    """librdkafka's producer for domain events (``events_out.py``): idempotent, acks=all."""
    return {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": f"{worker.app_id}-events",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        # aiokafka's and the Java clients' partitioner: a subject keeps its partition.
        "partitioner": "murmur2_random",
        "message.max.bytes": kafka.max_message_bytes,
    }
