"""Restart durability and concurrent registrations against the real ``_schemas`` topic."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from streams.registry.process import RegistryProcess

pytestmark = pytest.mark.integration


def schema(i: int) -> str:
    return json.dumps({"type": "record", "name": f"R{i}", "fields": [{"name": "x", "type": "int"}]})


def register(url: str, subject: str, text: str) -> int:
    response = httpx.post(f"{url}/subjects/{subject}/versions", json={"schema": text}, timeout=30)
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


def test_topic_is_compacted_single_partition(registry: RegistryProcess, kafka: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka)
    try:
        (described,) = admin.describe_topics([registry.topic])
        assert len(described["partitions"]) == 1
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, registry.topic)])
        text = repr(configs)
        assert "cleanup.policy" in text
        assert "compact" in text
    finally:
        admin.close()


def test_concurrent_registrations_never_share_an_id(registry: RegistryProcess, subject: str) -> None:
    jobs = [(f"{subject}-{i}", schema(i)) for i in range(40)] + [(f"{subject}-same", schema(0))] * 8
    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(lambda job: register(registry.url, *job), jobs))
    distinct = {text: set() for _, text in jobs}  # type: dict[str, set[int]]
    for (_, text), schema_id in zip(jobs, ids, strict=True):
        distinct[text].add(schema_id)
    assert all(len(v) == 1 for v in distinct.values())  # one schema -> one id
    assert len({next(iter(v)) for v in distinct.values()}) == len(distinct)  # one id -> one schema


def test_restart_after_sigkill_keeps_ids(registry: RegistryProcess, subject: str) -> None:
    ids = {i: register(registry.url, f"{subject}-{i}", schema(1000 + i)) for i in range(5)}
    httpx.put(f"{registry.url}/config/{subject}-0", json={"compatibility": "FULL"}, timeout=10)
    httpx.delete(f"{registry.url}/subjects/{subject}-4", timeout=10)
    before = httpx.get(f"{registry.url}/subjects", timeout=10).json()
    registry.kill()
    registry.start()
    assert httpx.get(f"{registry.url}/subjects", timeout=10).json() == before
    for i, schema_id in ids.items():
        answer = httpx.get(f"{registry.url}/schemas/ids/{schema_id}", timeout=10).json()
        assert json.loads(answer["schema"])["name"] == f"R{1000 + i}"
    got = httpx.get(f"{registry.url}/config/{subject}-0", timeout=10).json()
    assert got == {"compatibilityLevel": "FULL"}
    assert register(registry.url, f"{subject}-0", schema(1000)) == ids[0]
    assert register(registry.url, f"{subject}-new", schema(2000)) > max(ids.values())
