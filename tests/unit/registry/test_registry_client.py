"""Our client against a mock transport: error classification by code, not text."""

from __future__ import annotations

import httpx
import pytest

from streams.errors import RegistryRequestError, RegistryUnavailableError
from streams.registry.client import RegistryClient
from streams.registry.schema import SchemaSource


def client(handler: httpx.MockTransport) -> RegistryClient:
    return RegistryClient("http://registry", transport=handler)


def test_request_errors_carry_the_code() -> None:
    answer = httpx.Response(404, json={"error_code": 40401, "message": "Subject 's' not found."})
    with client(httpx.MockTransport(lambda request: answer)) as c:
        assert c.latest("s") is None
        with pytest.raises(RegistryRequestError) as caught:
            c.schema_by_id(3)
    assert caught.value.error_code == 40401


def test_server_errors_and_no_answer_are_transient() -> None:
    with (
        client(httpx.MockTransport(lambda request: httpx.Response(500, text="boom"))) as c,
        pytest.raises(RegistryUnavailableError),
    ):
        c.subjects()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client(httpx.MockTransport(refuse)) as c, pytest.raises(RegistryUnavailableError):
        c.subjects()


def test_compatibility_reasons() -> None:
    body = {"is_compatible": False, "messages": ["BACKWARD vs version 1: ..."]}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["verbose"] == "true"
        assert request.url.raw_path.startswith(b"/compatibility/subjects/a%2Fb/versions/latest")
        return httpx.Response(200, json=body)

    with client(httpx.MockTransport(handler)) as c:
        assert c.compatibility_problems("a/b", SchemaSource('"string"')) == body["messages"]
