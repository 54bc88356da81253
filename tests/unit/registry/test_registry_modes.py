"""``/mode``: READONLY refuses writes with 42205 (as Confluent), IMPORT keeps the source's ids."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from streams.registry.log import MemoryLog
from streams.registry.server import make_app
from streams.registry.service import Registry
from streams.registry.store import SchemaStore
from tests.unit.registry.test_registry_api import BAD, V1, V2, Client, call


async def test_default_mode_and_subject_level_lookup(client: Client) -> None:
    assert await call(client, "GET", "/mode") == {"mode": "READWRITE"}
    assert (await call(client, "GET", "/mode/s", 404))["error_code"] == 40409
    assert await call(client, "GET", "/mode/s?defaultToGlobal=true") == {"mode": "READWRITE"}
    assert await call(client, "PUT", "/mode/s", mode="readonly") == {"mode": "READONLY"}
    assert await call(client, "GET", "/mode/s") == {"mode": "READONLY"}
    assert await call(client, "DELETE", "/mode/s") == {"mode": "READONLY"}
    assert (await call(client, "GET", "/mode/s", 404))["error_code"] == 40409


async def test_invalid_mode_is_42204(client: Client) -> None:
    assert (await call(client, "PUT", "/mode", 422, mode="SOMETIMES"))["error_code"] == 42204
    assert (await call(client, "PUT", "/mode", 422))["error_code"] == 42204


async def test_readonly_subject_refuses_every_write_but_reads_and_mode_changes(client: Client) -> None:
    await call(client, "POST", "/subjects/s/versions", schema=V1)
    await call(client, "PUT", "/mode/s", mode="READONLY")
    refused = [
        await call(client, "POST", "/subjects/s/versions", 422, schema=V2),
        await call(client, "DELETE", "/subjects/s/versions/1", 422),
        await call(client, "DELETE", "/subjects/s", 422),
        await call(client, "PUT", "/config/s", 422, compatibility="NONE"),
        await call(client, "DELETE", "/config/s", 422),
    ]
    assert {r["error_code"] for r in refused} == {42205}
    assert "read-only" in refused[0]["message"]
    # Reads still work, and other subjects stay writable.
    assert (await call(client, "GET", "/subjects/s/versions/latest"))["version"] == 1
    assert (await call(client, "POST", "/subjects/s", schema=V1))["version"] == 1
    await call(client, "POST", "/subjects/other/versions", schema=V2)
    # Leaving READONLY is always allowed, then writes pass again.
    await call(client, "PUT", "/mode/s", mode="READWRITE")
    assert (await call(client, "POST", "/subjects/s/versions", schema=V2))["version"] == 2


async def test_global_readonly_covers_subjects_without_their_own_mode(client: Client) -> None:
    await call(client, "PUT", "/mode", mode="READONLY")
    assert (await call(client, "POST", "/subjects/s/versions", 422, schema=V1))["error_code"] == 42205
    assert (await call(client, "PUT", "/config", 422, compatibility="NONE"))["error_code"] == 42205
    await call(client, "PUT", "/mode/s", mode="READWRITE")  # a subject override wins over global
    assert (await call(client, "POST", "/subjects/s/versions", schema=V1))["version"] == 1


async def test_import_keeps_given_ids_and_skips_compatibility(client: Client) -> None:
    await call(client, "PUT", "/mode", mode="IMPORT")
    assert (await call(client, "GET", "/mode"))["mode"] == "IMPORT"
    first = await call(client, "POST", "/subjects/s/versions", schema=V1, id=40, version=3)
    assert (first["id"], first["version"]) == (40, 3)
    # BAD is BACKWARD-incompatible with V1; an import copies history as it was, so it passes.
    second = await call(client, "POST", "/subjects/s/versions", schema=BAD, id=41)
    assert (second["id"], second["version"]) == (41, 4)
    clash = await call(client, "POST", "/subjects/t/versions", 422, schema=V2, id=40)
    assert clash["error_code"] == 42205  # id 40 already holds another schema
    no_id = await call(client, "POST", "/subjects/t/versions", 422, schema=V2)
    assert no_id["error_code"] == 42205
    await call(client, "PUT", "/mode", mode="READWRITE")
    fresh = await call(client, "POST", "/subjects/u/versions", schema=V2)
    assert fresh["id"] == 42  # allocation continues above every imported id
    assert (await call(client, "POST", "/subjects/u/versions", 422, schema=V1, id=99))["error_code"] == 42205


async def test_import_needs_an_empty_target_unless_forced(client: Client) -> None:
    await call(client, "POST", "/subjects/s/versions", schema=V1)
    assert (await call(client, "PUT", "/mode", 422, mode="IMPORT"))["error_code"] == 42205
    assert (await call(client, "PUT", "/mode/s", 422, mode="IMPORT"))["error_code"] == 42205
    assert await call(client, "PUT", "/mode/empty", mode="IMPORT") == {"mode": "IMPORT"}
    assert await call(client, "PUT", "/mode?force=true", mode="IMPORT") == {"mode": "IMPORT"}


async def test_modes_survive_a_restart(client: Client, memory_log: MemoryLog) -> None:
    await call(client, "PUT", "/mode/s", mode="READONLY")
    await call(client, "PUT", "/mode/t", mode="READONLY")
    await call(client, "DELETE", "/mode/t")
    replay = MemoryLog()
    replay.entries = list(memory_log.entries)
    restarted: TestClient[Any, Any]
    async with TestClient(TestServer(make_app(Registry(SchemaStore(), replay)))) as restarted:
        assert await call(restarted, "GET", "/mode/s") == {"mode": "READONLY"}
        assert (await call(restarted, "GET", "/mode/t", 404))["error_code"] == 40409
