"""Every endpoint of issue 3 against the real process and Kafka, and each level pass/fail."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from streams.registry.process import RegistryProcess

pytestmark = pytest.mark.integration


def rec(*fields: dict[str, Any], name: str = "R") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "it", "fields": list(fields)})


A = {"name": "a", "type": "int"}
A_LONG = {"name": "a", "type": "long"}
B_OPT = {"name": "b", "type": ["null", "string"], "default": None}
B_REQ = {"name": "b", "type": "string"}


@pytest.fixture
def http(registry: RegistryProcess) -> Any:
    with httpx.Client(base_url=registry.url, timeout=10) as client:
        yield client


def call(http: httpx.Client, method: str, path: str, status: int = 200, **body: Any) -> Any:
    response = http.request(method, path, json=body or None)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/vnd.schemaregistry.v1+json")
    return response.json()


def test_subjects_versions_and_ids(http: httpx.Client, subject: str) -> None:
    first = call(http, "POST", f"/subjects/{subject}/versions", schema=rec(A))
    assert (
        call(http, "POST", f"/subjects/{subject}/versions", schema=rec(A).replace(":", ": "))["id"]
        == first["id"]
    )
    second = call(http, "POST", f"/subjects/{subject}/versions", schema=rec(A, B_OPT))
    assert subject in call(http, "GET", "/subjects")
    assert call(http, "GET", f"/subjects/{subject}/versions") == [1, 2]
    latest = call(http, "GET", f"/subjects/{subject}/versions/latest")
    assert (latest["version"], latest["id"]) == (2, second["id"])
    assert call(http, "GET", f"/subjects/{subject}/versions/1")["id"] == first["id"]
    assert call(http, "GET", f"/subjects/{subject}/versions/1/schema")["fields"] == [A]
    assert json.loads(call(http, "GET", f"/schemas/ids/{first['id']}")["schema"])["fields"] == [A]
    assert call(http, "GET", f"/schemas/ids/{first['id']}/schema")["name"] == "R"
    assert {"subject": subject, "version": 1} in call(http, "GET", f"/schemas/ids/{first['id']}/versions")
    assert call(http, "GET", f"/schemas/ids/{first['id']}?subject={subject}&fetchMaxId=false")["schema"]
    found = call(http, "POST", f"/subjects/{subject}?normalize=false&deleted=true", schema=rec(A))
    assert (found["version"], found["id"]) == (1, first["id"])
    assert call(http, "GET", "/schemas/types") == ["AVRO"]
    assert call(http, "GET", "/mode") == {"mode": "READWRITE"}


@pytest.mark.scenario("B3")
def test_errors(http: httpx.Client, subject: str) -> None:
    call(http, "POST", f"/subjects/{subject}/versions", schema=rec(A))
    assert call(http, "GET", f"/subjects/{subject}-x/versions", 404)["error_code"] == 40401
    assert call(http, "GET", f"/subjects/{subject}/versions/9", 404)["error_code"] == 40402
    assert call(http, "GET", "/schemas/ids/999999", 404)["error_code"] == 40403
    assert call(http, "POST", f"/subjects/{subject}/versions", 422, schema='{"type":')["error_code"] == 42201
    assert call(http, "GET", f"/subjects/{subject}/versions/x", 422)["error_code"] == 42202
    assert call(http, "PUT", f"/config/{subject}", 422, compatibility="NOPE")["error_code"] == 42203
    refused = call(http, "POST", f"/subjects/{subject}/versions", 409, schema=rec(A, B_REQ))
    assert refused["error_code"] == 409
    assert call(http, "GET", f"/subjects/{subject}/versions/latest")["version"] == 1  # B3: unchanged


def test_config_and_compatibility_endpoint(http: httpx.Client, subject: str) -> None:
    assert call(http, "GET", "/config")["compatibilityLevel"] == "BACKWARD"
    assert call(http, "GET", f"/config/{subject}", 404)["error_code"] == 40408
    assert call(http, "GET", f"/config/{subject}?defaultToGlobal=true") == {"compatibilityLevel": "BACKWARD"}
    assert call(http, "PUT", f"/config/{subject}", compatibility="FULL") == {"compatibility": "FULL"}
    call(http, "POST", f"/subjects/{subject}/versions", schema=rec(A))
    verdict = call(
        http, "POST", f"/compatibility/subjects/{subject}/versions/latest?verbose=true", schema=rec(A_LONG)
    )
    assert verdict["is_compatible"] is False
    assert any("FORWARD" in m for m in verdict["messages"])
    assert call(http, "POST", f"/compatibility/subjects/{subject}/versions/1", schema=rec(A, B_OPT)) == {
        "is_compatible": True
    }
    assert call(http, "DELETE", f"/config/{subject}") == {"compatibilityLevel": "FULL"}
    assert call(http, "GET", f"/config/{subject}?defaultToGlobal=true") == {"compatibilityLevel": "BACKWARD"}


@pytest.mark.parametrize(
    ("level", "history", "passes", "fails"),
    [
        ("NONE", [[A]], [B_REQ], None),
        ("BACKWARD", [[A]], [A, B_OPT], [A, B_REQ]),
        ("BACKWARD_TRANSITIVE", [[A], [A, B_REQ]], [A, B_OPT], [B_REQ]),
        ("FORWARD", [[A]], [A, B_REQ], [A_LONG]),
        ("FORWARD_TRANSITIVE", [[A, B_REQ], [A, B_REQ, B_OPT | {"name": "c"}]], [A, B_REQ], [A]),
        ("FULL", [[A]], [A, B_OPT], [A, B_REQ]),
        ("FULL_TRANSITIVE", [[A, B_OPT], [A]], [A, B_OPT], [B_OPT]),
    ],
)
def test_each_level(
    http: httpx.Client,
    subject: str,
    level: str,
    history: list[list[dict[str, Any]]],
    passes: list[dict[str, Any]],
    fails: list[dict[str, Any]] | None,
) -> None:
    call(http, "PUT", f"/config/{subject}", compatibility="NONE")
    for fields in history:
        call(http, "POST", f"/subjects/{subject}/versions", schema=rec(*fields))
    call(http, "PUT", f"/config/{subject}", compatibility=level)
    if fails is not None:
        call(http, "POST", f"/subjects/{subject}/versions", 409, schema=rec(*fails))
    call(http, "POST", f"/subjects/{subject}/versions", schema=rec(*passes))


def test_soft_and_hard_delete(http: httpx.Client, subject: str) -> None:
    call(http, "POST", f"/subjects/{subject}/versions", schema=rec(A))
    v2 = call(http, "POST", f"/subjects/{subject}/versions", schema=rec(A, B_OPT))
    assert call(http, "DELETE", f"/subjects/{subject}/versions/latest") == 2
    assert call(http, "GET", f"/subjects/{subject}/versions") == [1]
    assert call(http, "GET", f"/schemas/ids/{v2['id']}")["schema"]
    assert call(http, "DELETE", f"/subjects/{subject}/versions/2?permanent=true") == 2
    assert call(http, "DELETE", f"/subjects/{subject}?permanent=true", 404)["error_code"] == 40405
    assert call(http, "DELETE", f"/subjects/{subject}") == [1]
    assert subject not in call(http, "GET", "/subjects")
    assert subject in call(http, "GET", "/subjects?deleted=true")
    assert call(http, "DELETE", f"/subjects/{subject}?permanent=true") == [1]
    assert call(http, "GET", f"/subjects/{subject}/versions?deleted=true", 404)["error_code"] == 40401


def test_references(http: httpx.Client, subject: str) -> None:
    shared = f"{subject}.Shared"
    call(http, "POST", f"/subjects/{shared}/versions", schema=rec(A, name="Shared"))
    refs = [{"name": "it.Shared", "subject": shared, "version": 1}]
    event = json.dumps(
        {"type": "record", "name": "Ev", "namespace": "it", "fields": [{"name": "s", "type": "it.Shared"}]}
    )
    registered = call(http, "POST", f"/subjects/{subject}/versions", schema=event, references=refs)
    assert call(http, "GET", f"/schemas/ids/{registered['id']}")["references"] == refs
    assert call(http, "GET", f"/subjects/{shared}/versions/1/referencedby") == [registered["id"]]
