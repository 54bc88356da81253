"""A small synchronous client for our CLI and codecs (confluent-kafka's client serves agents too).

Errors: a registry that does not answer, or answers 5xx, raises ``RegistryUnavailableError``
(transient); any 4xx raises ``RegistryRequestError`` carrying the registry's ``error_code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from streams.errors import RegistryRequestError, RegistryUnavailableError
from streams.registry.errors import ErrorCode
from streams.registry.schema import Reference, SchemaSource

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
# Every call is a small local lookup; a registry slower than this is treated as down.
DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RegisteredSchema:
    subject: str
    version: int
    schema_id: int
    source: SchemaSource


class RegistryClient:
    def __init__(
        self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = httpx.Client(
            base_url=url,
            timeout=timeout_s,
            transport=transport,
            headers={"Accept": MEDIA_TYPE, "Content-Type": MEDIA_TYPE},
        )

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        try:
            response = self._http.request(method, path, json=body, params=params or None)
        except httpx.TransportError as exc:
            msg = f"schema registry at {self._http.base_url}: {exc!r}"
            raise RegistryUnavailableError(msg) from exc
        status = response.status_code
        if status >= 500:
            msg = f"schema registry answered {status}: {response.text}"
            raise RegistryUnavailableError(msg)
        data = response.json()
        if status >= 400:
            code = int(data.get("error_code", status))
            raise RegistryRequestError(status, code, str(data.get("message", "")))
        return data

    def subjects(self) -> list[str]:
        return list(self._call("GET", "/subjects"))

    def version(self, subject: str, version: int | str = "latest") -> RegisteredSchema:
        data = self._call("GET", f"/subjects/{_q(subject)}/versions/{version}")
        return RegisteredSchema(data["subject"], data["version"], data["id"], _source(data))

    def latest(self, subject: str) -> RegisteredSchema | None:
        """The subject's latest live version, or ``None`` if the subject has none."""
        try:
            return self.version(subject)
        except RegistryRequestError as exc:
            if exc.error_code == ErrorCode.SUBJECT_NOT_FOUND:
                return None
            raise

    def schema_by_id(self, schema_id: int) -> SchemaSource:
        return _source(self._call("GET", f"/schemas/ids/{schema_id}"))

    def referenced(self, ref: Reference) -> SchemaSource:
        return self.version(ref.subject, ref.version).source

    def register(self, subject: str, source: SchemaSource) -> RegisteredSchema:
        data = self._call("POST", f"/subjects/{_q(subject)}/versions", _body(source))
        # Older registries answer only the id; look the version up then.
        return self.version(subject, data["version"]) if "version" in data else self.lookup(subject, source)

    def lookup(self, subject: str, source: SchemaSource) -> RegisteredSchema:
        data = self._call("POST", f"/subjects/{_q(subject)}", _body(source))
        return RegisteredSchema(data["subject"], data["version"], data["id"], _source(data))

    def compatibility_problems(
        self, subject: str, source: SchemaSource, version: str = "latest"
    ) -> list[str]:
        """Why registering ``source`` would be refused (empty if it would pass)."""
        path = f"/compatibility/subjects/{_q(subject)}/versions/{version}"
        data = self._call("POST", path, _body(source), verbose="true")
        if data["is_compatible"]:
            return []
        return list(data.get("messages") or ["incompatible (the registry gave no reason)"])

    def level(self, subject: str | None = None) -> str:
        path = f"/config/{_q(subject)}" if subject else "/config"
        return str(self._call("GET", path, defaultToGlobal="true")["compatibilityLevel"])

    def set_level(self, level: str, subject: str | None = None) -> None:
        path = f"/config/{_q(subject)}" if subject else "/config"
        self._call("PUT", path, {"compatibility": level})


def _q(subject: str) -> str:
    return quote(subject, safe="")


def _body(source: SchemaSource) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": source.text}
    if source.references:
        body["references"] = [r.to_json() for r in source.references]
    return body


def _source(data: dict[str, Any]) -> SchemaSource:
    return SchemaSource(data["schema"], tuple(Reference.from_json(r) for r in data.get("references") or ()))
