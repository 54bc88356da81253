"""Every client's record limit and the broker's come from one setting (kafka.max_message_bytes)."""

from __future__ import annotations

from pathlib import Path

from streams.pipeline.ck_consumer import consumer_config
from streams.pipeline.clients import consumer_kwargs, producer_kwargs, reader_kwargs
from streams.settings import ConnectSettings, KafkaSettings, RegistrySettings, WorkerSettings
from streams.stack import configs
from streams.stack.paths import StackPaths


def test_one_setting_sizes_the_broker_connect_and_the_workers_clients() -> None:
    kafka = KafkaSettings(max_message_bytes=12 * 1024 * 1024)
    paths = StackPaths(Path("/s"), Path("/c"))
    assert configs.kafka_server_properties(kafka, paths)["message.max.bytes"] == str(12 * 1024 * 1024)
    connect = configs.connect_worker_properties(ConnectSettings(), kafka, RegistrySettings(), paths)
    assert connect["producer.max.request.size"] == str(12 * 1024 * 1024)
    # aiokafka's default is 1 MiB: a 2 MiB dead letter or domain event could not be sent.
    assert producer_kwargs(kafka, WorkerSettings())["max_request_size"] == 12 * 1024 * 1024
    for kw in (consumer_kwargs(kafka, WorkerSettings()), reader_kwargs(kafka, "r")):
        assert kw["max_partition_fetch_bytes"] >= 12 * 1024 * 1024
        assert kw["fetch_max_bytes"] >= 12 * 1024 * 1024


def test_the_default_is_the_stack_brokers_8_mib() -> None:
    assert KafkaSettings().max_message_bytes == 8 * 1024 * 1024


def test_both_consumers_take_the_fetch_wait_from_one_setting() -> None:
    """A fetch of only quiet partitions must not hold a busy one's records for Kafka's 500 ms."""
    kafka = KafkaSettings()
    assert WorkerSettings().fetch_max_wait_ms == 100
    assert consumer_kwargs(kafka, WorkerSettings())["fetch_max_wait_ms"] == 100
    assert consumer_config(kafka, WorkerSettings())["fetch.wait.max.ms"] == 100
    worker = WorkerSettings(fetch_max_wait_ms=20)
    assert consumer_kwargs(kafka, worker)["fetch_max_wait_ms"] == 20
    assert consumer_config(kafka, worker)["fetch.wait.max.ms"] == 20
