"""The Connect client against httpx.MockTransport: retries, error bodies, typed answers."""

from __future__ import annotations

import json

import httpx
import pytest

from streams.connect.client import ConnectClient
from streams.connect.transport import Transport
from streams.errors import (
    ConnectNotFoundError,
    ConnectRequestError,
    ConnectUnavailableError,
    ConnectValidationError,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(handler: httpx.MockTransport, clock: FakeClock, deadline: float = 10.0) -> ConnectClient:
    http = httpx.Client(base_url="http://connect.test", transport=handler)
    transport = Transport(http, deadline, sleep=clock.sleep, clock=clock)
    client = ConnectClient("http://connect.test", http_transport=handler, transport=transport)
    return client


def test_409_is_retried_with_backoff_until_success() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) < 4:
            return httpx.Response(
                409,
                json={
                    "error_code": 409,
                    "message": "Cannot complete request momentarily due to stale configuration",
                },
            )
        return httpx.Response(201, json={"name": "c", "config": {}, "tasks": []})

    clock = FakeClock()
    client = make_client(httpx.MockTransport(handler), clock)
    client.put_config("c", {"connector.class": "X"})
    assert calls == ["PUT"] * 4
    assert clock.sleeps == [0.25, 0.5, 1.0]


def test_500_rebalance_expected_is_retried_but_other_500s_are_not() -> None:
    calls: list[str] = []
    expected = "Request cannot be completed because a rebalance is expected"

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/config") and len(calls) < 3:
            return httpx.Response(500, json={"error_code": 500, "message": expected})
        if request.url.path.endswith("/config"):
            return httpx.Response(200, json={"connector.class": "X"})
        return httpx.Response(500, json={"error_code": 500, "message": "NullPointerException"})

    clock = FakeClock()
    client = make_client(httpx.MockTransport(handler), clock)
    assert client.config("c") == {"connector.class": "X"}
    assert clock.sleeps == [0.25, 0.5]
    with pytest.raises(ConnectRequestError, match="NullPointerException"):
        client.status("c")
    assert clock.sleeps == [0.25, 0.5]  # not retried


def test_409_past_the_deadline_is_unavailable() -> None:
    clock = FakeClock()
    handler = httpx.MockTransport(
        lambda r: httpx.Response(409, json={"error_code": 409, "message": "rebalance"})
    )
    client = make_client(handler, clock, deadline=5.0)
    with pytest.raises(ConnectUnavailableError, match="kept answering 409"):
        client.pause("c")
    assert clock.now <= 5.0


def test_error_body_becomes_typed_error_with_connect_message() -> None:
    body = {
        "error_code": 400,
        "message": "Connector configuration is invalid and contains the following 1 error(s)",
    }
    client = make_client(httpx.MockTransport(lambda r: httpx.Response(400, json=body)), FakeClock())
    with pytest.raises(ConnectRequestError) as info:
        client.put_config("c", {})
    assert info.value.status == 400
    assert "contains the following 1 error" in str(info.value)


def test_404_is_not_found_and_config_of_missing_is_none() -> None:
    body = {"error_code": 404, "message": "Connector nope not found"}
    client = make_client(httpx.MockTransport(lambda r: httpx.Response(404, json=body)), FakeClock())
    assert client.config("nope") is None
    with pytest.raises(ConnectNotFoundError, match="Connector nope not found"):
        client.status("nope")


def test_non_json_error_body_keeps_text() -> None:
    client = make_client(httpx.MockTransport(lambda r: httpx.Response(500, text="boom")), FakeClock())
    with pytest.raises(ConnectRequestError, match="500: boom"):
        client.names()


def test_unreachable_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = make_client(httpx.MockTransport(refuse), FakeClock())
    with pytest.raises(ConnectUnavailableError, match=r"http://connect\.test"):
        client.names()


VALIDATE_BODY = {
    "name": "io.debezium.connector.postgresql.PostgresConnector",
    "error_count": 2,
    "groups": ["Common"],
    "configs": [
        {
            "definition": {"name": "topic.prefix"},
            "value": {
                "name": "topic.prefix",
                "value": None,
                "errors": ["The 'topic.prefix' value is invalid: A value is required"],
            },
        },
        {
            "definition": {"name": "snapshot.mode"},
            "value": {
                "name": "snapshot.mode",
                "value": "bogus",
                "errors": ["Value must be one of always, initial"],
            },
        },
        {"definition": {"name": "slot.name"}, "value": {"name": "slot.name", "value": "s", "errors": []}},
    ],
}


def test_validate_collects_per_property_messages() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["path"] = request.url.raw_path.decode()
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json=VALIDATE_BODY)

    client = make_client(httpx.MockTransport(handler), FakeClock())
    result = client.validate("io.debezium.connector.postgresql.PostgresConnector", {"connector.class": "x"})
    assert (
        seen["path"]
        == "/connector-plugins/io.debezium.connector.postgresql.PostgresConnector/config/validate"
    )
    assert result.error_count == 2
    assert [p.name for p in result.problems] == ["topic.prefix", "snapshot.mode"]
    assert "A value is required" in str(result.problems[0])


def test_validate_definition_raises_with_details(tmp_path: object) -> None:
    from pathlib import Path

    from streams.connect.apply import validate_definition
    from streams.connect.definitions import ConnectorDefinition

    client = make_client(httpx.MockTransport(lambda r: httpx.Response(200, json=VALIDATE_BODY)), FakeClock())
    definition = ConnectorDefinition("c", {"connector.class": VALIDATE_BODY["name"]}, Path("c.json"))  # type: ignore[dict-item]
    with pytest.raises(ConnectValidationError) as info:
        validate_definition(client, definition)
    assert len(info.value.details) == 2
    assert info.value.details[1].startswith("snapshot.mode: Value must be one of")


TRACE = (
    "org.apache.kafka.connect.errors.ConnectException: x\n\tat a.b\n"
    "Caused by: java.sql.SQLException: password authentication failed"
)


def test_restart_sends_flags_and_status_parses_tasks() -> None:
    seen: list[str] = []
    status = {
        "name": "c",
        "connector": {"state": "RUNNING", "worker_id": "127.0.0.1:8083"},
        "tasks": [
            {
                "id": 0,
                "state": "FAILED",
                "worker_id": "127.0.0.1:8083",
                "trace": TRACE,
            }
        ],
        "type": "source",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        return httpx.Response(200, json=status) if request.method == "GET" else httpx.Response(202)

    client = make_client(httpx.MockTransport(handler), FakeClock())
    client.restart("c", include_tasks=True, only_failed=True)
    parsed = client.status("c")
    assert seen[0] == "POST /connectors/c/restart?includeTasks=true&onlyFailed=true"
    assert not parsed.running
    assert parsed.failed_tasks[0].trace_summary.endswith(
        "Caused by: java.sql.SQLException: password authentication failed"
    )


def test_offsets_round_trip() -> None:
    body = {
        "offsets": [
            {"partition": {"server": "customers"}, "offset": {"lsn": 123}},
            {"partition": {"server": "just-reset"}, "offset": None},  # no offset: left out
        ]
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(
                200, json={"message": "The offsets for this connector have been reset successfully"}
            )
        return httpx.Response(200, json=body)

    client = make_client(httpx.MockTransport(handler), FakeClock())
    offsets = client.offsets("c")
    assert len(offsets) == 1
    assert offsets[0].partition == {"server": "customers"}
    assert offsets[0].offset == {"lsn": 123}
    assert "reset successfully" in client.reset_offsets("c")
