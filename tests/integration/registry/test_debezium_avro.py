"""Debezium inside Kafka Connect, with Confluent's Java AvroConverter, against our registry.

This is the client our registry must satisfy most: Connect's converter registers the key and
value schema of every captured table (TopicNameStrategy: ``<topic>-key`` / ``<topic>-value``)
and frames each message with the id it got. A source ``ADD COLUMN … NULL`` must become version 2
under BACKWARD; an incompatible change must be refused with 409 and fail the task loudly
(fault scenario S2, tests/faults/README.md): a task that skipped the event instead would
lose it silently.

The registry is this module's own process (``conftest.registry``), so a fix to
``streams/registry`` is tested without restarting the stack's registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streams.codecs import AvroDecoder, schema_id_of
from streams.connect.models import ConnectorStatus
from streams.registry.client import RegistryClient
from streams.registry.process import RegistryProcess
from streams.settings import Settings
from tests.integration.registry.debezium_capture import Capture, Message, Source, capture

pytestmark = pytest.mark.integration

PG_TABLE = "CREATE TABLE {table} (id serial PRIMARY KEY, note text NOT NULL)"
MARIA_TABLE = "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT NOT NULL)"
FIRST_ROW = "INSERT INTO {table} (note) VALUES ('first')"
ADD_EMAIL = {
    "postgres": "ALTER TABLE {table} ADD COLUMN email text NULL",
    "mariadb": "ALTER TABLE {table} ADD COLUMN email VARCHAR(64) NULL",
}


@pytest.fixture(scope="module")
def connect_up(settings: Settings) -> None:
    """Skip (with the reason) rather than fail when the shared stack's Connect is not running."""
    try:
        httpx.get(f"{settings.connect.url}/connectors", timeout=3).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.skip(f"Kafka Connect not reachable at {settings.connect.url} ({exc!r}); run `changefeed up`")


@pytest.fixture
def ours(registry: RegistryProcess) -> Iterator[RegistryClient]:
    with RegistryClient(registry.url) as client:
        yield client


def _versions(registry: RegistryProcess, subject: str) -> list[int]:
    answer = httpx.get(f"{registry.url}/subjects/{subject}/versions", timeout=5)
    return list(answer.json()) if answer.status_code == 200 else []


def _forget_subjects(registry: RegistryProcess, prefix: str) -> None:
    """Soft then hard delete every subject the capture registered (its name is their prefix)."""
    listed = httpx.get(f"{registry.url}/subjects", params={"subjectPrefix": prefix}, timeout=5).json()
    for subject in listed:
        httpx.delete(f"{registry.url}/subjects/{subject}", timeout=5)
        httpx.delete(f"{registry.url}/subjects/{subject}", params={"permanent": "true"}, timeout=5)
    assert (
        httpx.get(f"{registry.url}/subjects", params={"subjectPrefix": prefix, "deleted": "true"}).json()
        == []
    )


class Decoders:
    """Ours (fastavro + our client) and confluent-kafka's, to prove both read the Java bytes."""

    def __init__(self, registry: RegistryProcess, ours: RegistryClient, topic: str) -> None:
        self.ours = AvroDecoder(ours)
        confluent = SchemaRegistryClient({"url": registry.url})
        self.confluent = AvroDeserializer(confluent)
        self.topic = topic

    def value(self, message: Message) -> Any:
        decoded = self.ours.decode(message.value)
        theirs = self.confluent(message.value, SerializationContext(self.topic, MessageField.VALUE))
        assert decoded == theirs
        return decoded

    def key(self, message: Message) -> Any:
        decoded = self.ours.decode(message.key)
        theirs = self.confluent(message.key, SerializationContext(self.topic, MessageField.KEY))
        assert decoded == theirs
        return decoded


def _register_and_evolve(
    source: Source, settings: Settings, registry: RegistryProcess, ours: RegistryClient
) -> None:
    table = PG_TABLE if source == "postgres" else MARIA_TABLE
    with capture(settings, source, registry.url, [table, FIRST_ROW]) as cap:
        try:
            _check_first_version(cap, registry, ours)
            cap.table_sql(ADD_EMAIL[source])
            cap.table_sql("INSERT INTO {table} (note, email) VALUES ('second', 'b@example.org')")
            _check_second_version(cap, registry, ours)
        finally:
            _forget_subjects(registry, cap.name)


def _check_first_version(cap: Capture, registry: RegistryProcess, ours: RegistryClient) -> None:
    [snapshot] = cap.messages(1)
    assert _versions(registry, f"{cap.topic}-key") == [1]
    assert _versions(registry, f"{cap.topic}-value") == [1]
    key_v1, value_v1 = ours.version(f"{cap.topic}-key", 1), ours.version(f"{cap.topic}-value", 1)
    # Confluent wire format: magic byte 0 and the id the registry issued for that subject.
    assert snapshot.value[0] == 0
    assert snapshot.key[0] == 0
    assert schema_id_of(snapshot.value) == value_v1.schema_id
    assert schema_id_of(snapshot.key) == key_v1.schema_id
    decoders = Decoders(registry, ours, cap.topic)
    value = decoders.value(snapshot)
    assert value["op"] == "r"
    assert value["after"]["note"] == "first"
    assert decoders.key(snapshot) == {"id": value["after"]["id"]}
    assert ours.level(f"{cap.topic}-value") == "BACKWARD"


def _check_second_version(cap: Capture, registry: RegistryProcess, ours: RegistryClient) -> None:
    first, evolved = cap.messages(2)
    assert _versions(registry, f"{cap.topic}-value") == [1, 2]
    assert _versions(registry, f"{cap.topic}-key") == [1]  # the key did not change
    value_v2 = ours.version(f"{cap.topic}-value", 2)
    assert schema_id_of(evolved.value) == value_v2.schema_id
    decoders = Decoders(registry, ours, cap.topic)
    value = decoders.value(evolved)
    assert value["op"] == "c"
    assert value["after"]["note"] == "second"
    assert value["after"]["email"] == "b@example.org"
    # An agent reading with v2 still reads v1 data: the new field takes its default.
    as_v2 = AvroDecoder(ours, reader_schema=json.loads(value_v2.source.text)).decode(first.value)
    assert as_v2["after"]["email"] is None
    assert as_v2["after"]["note"] == "first"


def test_postgres_registers_decodes_and_evolves(
    connect_up: None, settings: Settings, registry: RegistryProcess, ours: RegistryClient
) -> None:
    _register_and_evolve("postgres", settings, registry, ours)


def test_mariadb_registers_decodes_and_evolves(
    connect_up: None, settings: Settings, registry: RegistryProcess, ours: RegistryClient
) -> None:
    _register_and_evolve("mariadb", settings, registry, ours)


def _task_failed(status: ConnectorStatus) -> bool:
    return bool(status.failed_tasks)


@pytest.mark.scenario("S2")
def test_incompatible_change_is_refused_and_fails_the_task(
    connect_up: None, settings: Settings, registry: RegistryProcess, ours: RegistryClient
) -> None:
    """text → integer: under BACKWARD an int reader cannot read string data, so 409, task FAILED."""
    with capture(settings, "postgres", registry.url, [PG_TABLE, FIRST_ROW]) as cap:
        try:
            cap.messages(1)
            subject = f"{cap.topic}-value"
            before = ours.version(subject)
            cap.table_sql("ALTER TABLE {table} ALTER COLUMN note TYPE integer USING length(note)")
            cap.table_sql("INSERT INTO {table} (note) VALUES (7)")
            status = cap.wait_status(_task_failed, "FAILED")
            trace = status.failed_tasks[0].trace
            assert "409" in trace, trace
            assert "incompatible" in trace.lower(), trace
            after = ours.version(subject)
            assert (
                (after.version, after.schema_id)
                == (before.version, before.schema_id)
                == (1, before.schema_id)
            )
            # Nothing was written without a registered schema: the insert is not on the topic.
            with pytest.raises(AssertionError, match="1 of 2 messages"):
                cap.messages(2, timeout_s=2)
        finally:
            _forget_subjects(registry, cap.name)
