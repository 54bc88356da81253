"""Listing endpoints: ``GET /schemas``, ``/subjects?deleted=&deletedOnly=``, ``referencedby``."""

from __future__ import annotations

from tests.unit.registry.test_registry_api import V1, V2, Client, call, record


async def test_schemas_lists_every_live_version_with_paging(client: Client) -> None:
    assert await call(client, "GET", "/schemas") == []
    one = await call(client, "POST", "/subjects/a/versions", schema=V1)
    two = await call(client, "POST", "/subjects/a/versions", schema=V2)
    await call(client, "POST", "/subjects/b/versions", schema=V1)
    listed = await call(client, "GET", "/schemas")
    assert [(s["subject"], s["version"], s["id"]) for s in listed] == [
        ("a", 1, one["id"]),
        ("a", 2, two["id"]),
        ("b", 1, one["id"]),
    ]
    assert listed[0]["schema"] == (await call(client, "GET", "/subjects/a/versions/1"))["schema"]
    latest = await call(client, "GET", "/schemas?latestOnly=true")
    assert [(s["subject"], s["version"]) for s in latest] == [("a", 2), ("b", 1)]
    assert [s["subject"] for s in await call(client, "GET", "/schemas?subjectPrefix=b")] == ["b"]
    page = await call(client, "GET", "/schemas?offset=1&limit=1")
    assert [(s["subject"], s["version"]) for s in page] == [("a", 2)]
    assert (await call(client, "GET", "/schemas?limit=x", 422))["error_code"] == 422


async def test_schemas_shows_soft_deleted_only_when_asked(client: Client) -> None:
    await call(client, "POST", "/subjects/a/versions", schema=V1)
    await call(client, "POST", "/subjects/a/versions", schema=V2)
    await call(client, "DELETE", "/subjects/a/versions/1")
    assert [s["version"] for s in await call(client, "GET", "/schemas")] == [2]
    assert [s["version"] for s in await call(client, "GET", "/schemas?deleted=true")] == [1, 2]


async def test_subjects_deleted_and_deleted_only(client: Client) -> None:
    await call(client, "POST", "/subjects/gone/versions", schema=V1)
    await call(client, "POST", "/subjects/kept/versions", schema=V1)
    await call(client, "DELETE", "/subjects/gone")
    assert await call(client, "GET", "/subjects") == ["kept"]
    assert await call(client, "GET", "/subjects?deleted=true") == ["gone", "kept"]
    assert await call(client, "GET", "/subjects?deletedOnly=true") == ["gone"]
    await call(client, "DELETE", "/subjects/gone?permanent=true")
    assert await call(client, "GET", "/subjects?deleted=true") == ["kept"]


async def test_referencedby_lists_live_referrers_only(client: Client) -> None:
    await call(
        client,
        "POST",
        "/subjects/c.Pos/versions",
        schema=record("Pos", {"name": "n", "type": "long"}, namespace="c"),
    )
    refs = [{"name": "c.Pos", "subject": "c.Pos", "version": 1}]
    event = record("E", {"name": "p", "type": "c.Pos"}, namespace="d")
    user = await call(client, "POST", "/subjects/d-value/versions", schema=event, references=refs)
    assert await call(client, "GET", "/subjects/c.Pos/versions/latest/referencedby") == [user["id"]]
    await call(client, "DELETE", "/subjects/d-value/versions/1")
    assert await call(client, "GET", "/subjects/c.Pos/versions/1/referencedby") == []
    assert (await call(client, "GET", "/subjects/c.Pos/versions/7/referencedby", 404))["error_code"] == 40402
    assert (await call(client, "GET", "/subjects/nope/versions/1/referencedby", 404))["error_code"] == 40401
