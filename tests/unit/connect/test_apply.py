"""apply: validate first, PUT only on a diff, wait for RUNNING or raise with the trace."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.connect import apply as apply_mod
from streams.connect.apply import Action, apply_definition
from streams.connect.client import ConnectClient
from streams.connect.definitions import ConnectorDefinition
from streams.errors import ConnectorFailedError, ConnectValidationError

DEF = ConnectorDefinition("c", {"connector.class": "K", "a": "1"}, Path("c.json"))
RUNNING = {
    "name": "c",
    "type": "source",
    "connector": {"state": "RUNNING", "worker_id": "w"},
    "tasks": [{"id": 0, "state": "RUNNING", "worker_id": "w"}],
}


class FakeConnect:
    """A tiny in-memory Connect: enough of the API for apply."""

    def __init__(
        self, live: dict[str, str] | None = None, errors: int = 0, status: dict[str, Any] | None = None
    ):
        self.live = live
        self.errors = errors
        self.status = status or RUNNING
        self.puts: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path.endswith("/config/validate"):
            configs = [{"value": {"name": "a", "errors": ["bad a"] if self.errors else []}}]
            return httpx.Response(200, json={"name": "K", "error_count": self.errors, "configs": configs})
        if path == "/connectors/c/config" and method == "GET":
            if self.live is None:
                return httpx.Response(404, json={"error_code": 404, "message": "Connector c not found"})
            return httpx.Response(200, json=self.live)
        if path == "/connectors/c/config" and method == "PUT":
            self.live = {**json.loads(request.content), "name": "c"}
            self.puts.append(self.live)
            return httpx.Response(201, json={"name": "c", "config": self.live, "tasks": []})
        if path == "/connectors/c/status":
            return httpx.Response(200, json=self.status)
        return httpx.Response(404, json={"error_code": 404, "message": f"unexpected {method} {path}"})


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apply_mod, "_POLL_S", 0.0)
    monkeypatch.setattr(apply_mod, "_FAILURE_GRACE_S", 0.0)


def client_for(fake: FakeConnect) -> ConnectClient:
    return ConnectClient("http://connect.test", http_transport=httpx.MockTransport(fake))


def test_create_then_second_apply_is_a_no_op() -> None:
    fake = FakeConnect()
    first = apply_definition(client_for(fake), DEF)
    second = apply_definition(client_for(fake), DEF)
    assert (first.action, second.action) == (Action.CREATED, Action.UNCHANGED)
    assert len(fake.puts) == 1


def test_changed_property_is_put_once_and_reported() -> None:
    fake = FakeConnect(live={"connector.class": "K", "a": "0", "name": "c"})
    result = apply_definition(client_for(fake), DEF)
    assert result.action is Action.UPDATED
    assert [str(c) for c in result.diff.changes] == ["~ a: 0 -> 1"]


def test_dry_run_puts_nothing() -> None:
    fake = FakeConnect()
    assert apply_definition(client_for(fake), DEF, dry_run=True).action is Action.WOULD_CREATE
    assert fake.puts == []


def test_invalid_config_creates_nothing() -> None:
    fake = FakeConnect(errors=1)
    with pytest.raises(ConnectValidationError, match="a: bad a"):
        apply_definition(client_for(fake), DEF)
    assert fake.puts == []


def test_failed_task_raises_with_trace_summary() -> None:
    failed = {
        **RUNNING,
        "tasks": [
            {
                "id": 0,
                "state": "FAILED",
                "worker_id": "w",
                "trace": "E: top\n\tat x\nCaused by: P: root cause",
            }
        ],
    }
    with pytest.raises(
        ConnectorFailedError, match=re.escape("task 0 on w: E: top | Caused by: P: root cause")
    ):
        apply_definition(client_for(FakeConnect(status=failed)), DEF)
