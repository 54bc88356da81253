"""The REST API over an in-memory log: shapes, error codes, the Java converter's query params."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from streams.registry.log import MemoryLog
from streams.registry.server import make_app
from streams.registry.service import Registry
from streams.registry.store import SchemaStore

Client = TestClient[Any, Any]


def record(name: str, *fields: dict[str, Any], namespace: str = "t") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": namespace, "fields": list(fields)})


V1 = record("User", {"name": "id", "type": "long"})
V2 = record(
    "User", {"name": "id", "type": "long"}, {"name": "email", "type": ["null", "string"], "default": None}
)
BAD = record("User", {"name": "id", "type": "long"}, {"name": "age", "type": "int"})


async def call(client: Client, method: str, path: str, status: int = 200, **body: Any) -> Any:
    response = await client.request(method, path, json=body or None)
    data = await response.json(content_type=None)
    assert response.status == status, data
    return data


async def test_register_is_idempotent_by_canonical_form(client: Client) -> None:
    first = await call(client, "POST", "/subjects/s-value/versions", schema=V1)
    again = await call(client, "POST", "/subjects/s-value/versions", schema=V1.replace(",", " , "))
    assert first["id"] == again["id"] == 1
    assert again["version"] == 1
    assert await call(client, "GET", "/subjects/s-value/versions") == [1]
    other = await call(client, "POST", "/subjects/other-value/versions", schema=V1)
    assert other["id"] == 1  # one id per schema, across subjects


async def test_versions_and_ids(client: Client) -> None:
    await call(client, "POST", "/subjects/s/versions", schema=V1)
    second = await call(client, "POST", "/subjects/s/versions", schema=V2)
    latest = await call(client, "GET", "/subjects/s/versions/latest")
    assert latest == {"subject": "s", "version": 2, "id": second["id"], "schema": latest["schema"]}
    assert await call(client, "GET", "/subjects/s/versions/-1") == latest
    assert await call(client, "GET", "/subjects/s/versions/1/schema") == {
        "type": "record",
        "name": "User",
        "namespace": "t",
        "fields": [{"name": "id", "type": "long"}],
    }
    assert await call(client, "GET", "/subjects") == ["s"]
    by_id = await call(client, "GET", f"/schemas/ids/{second['id']}")
    assert by_id == {"schema": latest["schema"]}
    assert await call(client, "GET", f"/schemas/ids/{second['id']}/versions") == [
        {"subject": "s", "version": 2}
    ]
    assert await call(client, "GET", f"/schemas/ids/{second['id']}/subjects") == ["s"]
    assert (await call(client, "GET", f"/schemas/ids/{second['id']}/schema"))["name"] == "User"
    assert await call(client, "GET", "/schemas/types") == ["AVRO"]
    assert await call(client, "GET", "/mode") == {"mode": "READWRITE"}


async def test_java_avro_converter_query_params(client: Client) -> None:
    """AvroConverter 7.0.16 sends these on deserialize and needs ``version`` in the lookup."""
    registered = await call(client, "POST", "/subjects/t-value/versions", schema=V1)
    by_id = await call(client, "GET", f"/schemas/ids/{registered['id']}?fetchMaxId=false&subject=t-value")
    assert by_id == {"schema": by_id["schema"]}
    with_max = await call(client, "GET", f"/schemas/ids/{registered['id']}?fetchMaxId=true")
    assert with_max["maxId"] == registered["id"]
    found = await call(client, "POST", "/subjects/t-value?normalize=false&deleted=true", schema=V1)
    assert found["version"] == 1
    assert found["id"] == registered["id"]
    assert found["subject"] == "t-value"


async def test_not_found_codes(client: Client) -> None:
    await call(client, "POST", "/subjects/s/versions", schema=V1)
    assert (await call(client, "GET", "/subjects/nope/versions", 404))["error_code"] == 40401
    assert (await call(client, "GET", "/subjects/s/versions/7", 404))["error_code"] == 40402
    assert (await call(client, "GET", "/schemas/ids/99", 404))["error_code"] == 40403
    assert (await call(client, "POST", "/subjects/s", 404, schema=V2))["error_code"] == 40403
    assert (await call(client, "POST", "/subjects/nope", 404, schema=V2))["error_code"] == 40401
    assert (await call(client, "GET", "/no/such/route", 404))["error_code"] == 404


async def test_invalid_input_codes(client: Client) -> None:
    assert (await call(client, "POST", "/subjects/s/versions", 422, schema="{"))["error_code"] == 42201
    assert (await call(client, "POST", "/subjects/s/versions", 422, schema=""))["error_code"] == 42201
    assert (await call(client, "GET", "/subjects/s/versions/zero", 422))["error_code"] == 42202
    assert (await call(client, "GET", "/subjects/s/versions/0", 422))["error_code"] == 42202
    assert (await call(client, "PUT", "/config", 422, compatibility="SIDEWAYS"))["error_code"] == 42203


async def test_incompatible_is_409_and_latest_unchanged(client: Client) -> None:
    await call(client, "POST", "/subjects/s/versions", schema=V1)
    refused = await call(client, "POST", "/subjects/s/versions", 409, schema=BAD)
    assert refused["error_code"] == 409
    assert "age" in refused["message"]
    assert (await call(client, "GET", "/subjects/s/versions/latest"))["version"] == 1
    verdict = await call(client, "POST", "/compatibility/subjects/s/versions/latest?verbose=true", schema=BAD)
    assert verdict["is_compatible"] is False
    assert verdict["messages"]
    assert await call(client, "POST", "/compatibility/subjects/s/versions/1", schema=V2) == {
        "is_compatible": True
    }
    assert (await call(client, "POST", "/compatibility/subjects/new/versions/latest", schema=BAD))[
        "is_compatible"
    ]
    assert (await call(client, "POST", "/compatibility/subjects/s/versions", schema=V2))["is_compatible"]


async def test_config_global_and_subject(client: Client) -> None:
    assert await call(client, "GET", "/config") == {"compatibilityLevel": "BACKWARD"}
    assert await call(client, "PUT", "/config/s", compatibility="none") == {"compatibility": "NONE"}
    assert await call(client, "GET", "/config/s") == {"compatibilityLevel": "NONE"}
    assert (await call(client, "GET", "/config/other", 404))["error_code"] == 40408
    assert await call(client, "GET", "/config/other?defaultToGlobal=true") == {
        "compatibilityLevel": "BACKWARD"
    }
    await call(client, "POST", "/subjects/s/versions", schema=V1)
    await call(client, "POST", "/subjects/s/versions", schema=BAD)  # NONE lets it through
    assert await call(client, "DELETE", "/config/s") == {"compatibilityLevel": "NONE"}
    await call(client, "PUT", "/config", compatibility="FULL")
    assert await call(client, "GET", "/config/s?defaultToGlobal=true") == {"compatibilityLevel": "FULL"}


async def test_soft_then_hard_delete(client: Client) -> None:
    await call(client, "POST", "/subjects/s/versions", schema=V1)
    second = await call(client, "POST", "/subjects/s/versions", schema=V2)
    assert (await call(client, "DELETE", "/subjects/s/versions/2?permanent=true", 404))["error_code"] == 40407
    assert await call(client, "DELETE", "/subjects/s/versions/2") == 2
    assert (await call(client, "DELETE", "/subjects/s/versions/2", 404))["error_code"] == 40406
    assert await call(client, "GET", "/subjects/s/versions") == [1]
    assert await call(client, "GET", "/subjects/s/versions?deleted=true") == [1, 2]
    assert (await call(client, "GET", "/subjects/s/versions/2?deleted=true"))["id"] == second["id"]
    assert await call(client, "GET", f"/schemas/ids/{second['id']}")  # ids outlive soft deletes
    assert (await call(client, "DELETE", "/subjects/s?permanent=true", 404))["error_code"] == 40405
    assert await call(client, "DELETE", "/subjects/s") == [1]
    assert await call(client, "GET", "/subjects") == []
    assert await call(client, "GET", "/subjects?deleted=true") == ["s"]
    assert (await call(client, "DELETE", "/subjects/s", 404))["error_code"] == 40404
    assert await call(client, "DELETE", "/subjects/s?permanent=true") == [1, 2]
    assert (await call(client, "GET", "/subjects/s/versions?deleted=true", 404))["error_code"] == 40401
    fresh = await call(client, "POST", "/subjects/n/versions", schema=BAD)
    assert fresh["id"] == second["id"] + 1  # a hard-deleted id is never reissued


async def test_references(client: Client) -> None:
    position = record("Pos", {"name": "n", "type": "long"}, namespace="c")
    await call(client, "POST", "/subjects/c.Pos/versions", schema=position)
    event = record("E", {"name": "p", "type": "c.Pos"}, namespace="d")
    refs = [{"name": "c.Pos", "subject": "c.Pos", "version": 1}]
    registered = await call(client, "POST", "/subjects/d-value/versions", schema=event, references=refs)
    assert (await call(client, "GET", f"/schemas/ids/{registered['id']}"))["references"] == refs
    assert await call(client, "GET", "/subjects/c.Pos/versions/1/referencedby") == [registered["id"]]
    assert (await call(client, "DELETE", "/subjects/c.Pos/versions/1", 422))["error_code"] == 42206
    missing = [{"name": "c.Pos", "subject": "c.Pos", "version": 9}]
    assert (await call(client, "POST", "/subjects/x/versions", 422, schema=event, references=missing))[
        "error_code"
    ] == 42201


async def test_concurrent_registrations_get_distinct_ids(client: Client) -> None:
    schemas = [record(f"R{i}", {"name": "x", "type": "int"}) for i in range(20)]
    answers = await asyncio.gather(
        *(call(client, "POST", f"/subjects/c{i}/versions", schema=s) for i, s in enumerate(schemas)),
        *(call(client, "POST", "/subjects/same/versions", schema=V1) for _ in range(10)),
    )
    ids = [a["id"] for a in answers[:20]]
    assert len(set(ids)) == 20
    assert len({a["id"] for a in answers[20:]}) == 1


async def test_replaying_the_log_rebuilds_the_same_state(client: Client, memory_log: MemoryLog) -> None:
    await call(client, "POST", "/subjects/s/versions", schema=V1)
    await call(client, "POST", "/subjects/s/versions", schema=V2)
    await call(client, "PUT", "/config/s", compatibility="FULL")
    await call(client, "DELETE", "/subjects/s/versions/1")
    before = await call(client, "GET", "/subjects/s/versions/latest")
    async with TestClient(_restarted(memory_log)) as restarted:
        assert await call(restarted, "GET", "/subjects/s/versions/latest") == before
        assert await call(restarted, "GET", "/subjects/s/versions?deleted=true") == [1, 2]
        assert await call(restarted, "GET", "/config/s") == {"compatibilityLevel": "FULL"}
        third = await call(restarted, "POST", "/subjects/t/versions", schema=BAD)
        assert third["id"] == 3


def _restarted(memory_log: MemoryLog) -> Any:
    replay = MemoryLog()
    replay.entries = list(memory_log.entries)
    return TestServer(make_app(Registry(SchemaStore(), replay)))
