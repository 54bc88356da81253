"""confluent-kafka's own client and Avro serde against our registry, with evolution."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streams.codecs import AvroDecoder
from streams.registry.client import RegistryClient
from streams.registry.process import RegistryProcess

pytestmark = pytest.mark.integration

V1 = {
    "type": "record",
    "name": "Customer",
    "namespace": "it.confluent",
    "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
}
V2 = {**V1, "fields": [*V1["fields"], {"name": "email", "type": ["null", "string"], "default": None}]}


def test_client_calls(registry: RegistryProcess, subject: str) -> None:
    client = SchemaRegistryClient({"url": registry.url})
    schema_id = client.register_schema(subject, Schema(json.dumps(V1), "AVRO"))
    assert client.get_schema(schema_id).schema_str
    assert client.lookup_schema(subject, Schema(json.dumps(V1), "AVRO")).version == 1
    assert client.get_latest_version(subject).schema_id == schema_id
    assert client.get_versions(subject) == [1]
    assert client.test_compatibility(subject, Schema(json.dumps(V2), "AVRO"))
    client.set_compatibility(subject, "FULL")
    assert client.get_compatibility(subject) == "FULL"
    assert subject in client.get_subjects()
    assert client.delete_subject(subject) == [1]


def test_serializer_round_trip_with_evolution(registry: RegistryProcess, subject: str) -> None:
    topic = subject
    client = SchemaRegistryClient({"url": registry.url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    v1_bytes = AvroSerializer(client, json.dumps(V1))({"id": 1, "name": "Ada"}, ctx)
    v2_bytes = AvroSerializer(client, json.dumps(V2))({"id": 2, "name": "Bo", "email": "b@x"}, ctx)
    assert client.get_versions(f"{topic}-value") == [1, 2]
    reader = AvroDeserializer(client, json.dumps(V2))
    assert reader(v1_bytes, ctx) == {"id": 1, "name": "Ada", "email": None}
    assert reader(v2_bytes, ctx) == {"id": 2, "name": "Bo", "email": "b@x"}
    writer_only = AvroDeserializer(client)
    assert writer_only(v1_bytes, ctx) == {"id": 1, "name": "Ada"}
    # Our codec reads what confluent-kafka wrote, through our own client.
    with RegistryClient(registry.url) as ours:
        decoder = AvroDecoder(ours, reader_schema=V2)
        assert decoder.decode(v1_bytes) == {"id": 1, "name": "Ada", "email": None}
