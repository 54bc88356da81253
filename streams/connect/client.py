"""A typed client for the Kafka Connect REST API: one method per endpoint, nothing clever.

Retries, timeouts and error mapping live in :mod:`streams.connect.transport`; policy (what to
apply, when to wait) lives in :mod:`streams.connect.apply`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from streams.connect.models import ConnectorStatus, SourceOffset, ValidationResult
from streams.connect.transport import DEFAULT_REBALANCE_DEADLINE_S, DEFAULT_TIMEOUT, Transport
from streams.errors import ConnectNotFoundError


def _seg(value: str) -> str:
    """Quote one path segment (connector names and class names may hold dots, never slashes)."""
    return quote(value, safe="")


class ConnectClient:
    """Kafka Connect REST endpoints as typed methods; raises the errors of :mod:`streams.errors`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        rebalance_deadline_s: float = DEFAULT_REBALANCE_DEADLINE_S,
        http_transport: httpx.BaseTransport | None = None,
        transport: Transport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=http_transport)
        self._t = transport or Transport(self._http, rebalance_deadline_s)
        self.base_url = base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._t.request(method, path, **kwargs)
        return response.json() if response.content else None

    # -- cluster and plugins -------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        return dict(self._json("GET", "/"))

    def plugins(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/connector-plugins", params={"connectorsOnly": "false"}))

    def validate(self, connector_class: str, config: Mapping[str, str]) -> ValidationResult:
        """Ask the plugin itself to check a config; the answer names each bad property."""
        body = self._json("PUT", f"/connector-plugins/{_seg(connector_class)}/config/validate", json=config)
        return ValidationResult.from_json(body)

    # -- connectors ----------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._json("GET", "/connectors"))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/connectors/{_seg(name)}"))

    def config(self, name: str) -> dict[str, str] | None:
        """The live config as stored (placeholders unresolved), or None when absent."""
        try:
            return dict(self._json("GET", f"/connectors/{_seg(name)}/config"))
        except ConnectNotFoundError:
            return None

    def put_config(self, name: str, config: Mapping[str, str]) -> dict[str, Any]:
        """Create or update (idempotent); Connect restarts the connector when the config changes."""
        return dict(self._json("PUT", f"/connectors/{_seg(name)}/config", json=dict(config)))

    def patch_config(self, name: str, changes: Mapping[str, str | None]) -> dict[str, Any]:
        """Change some properties; a None value removes the property."""
        return dict(self._json("PATCH", f"/connectors/{_seg(name)}/config", json=dict(changes)))

    def status(self, name: str) -> ConnectorStatus:
        return ConnectorStatus.from_json(self._json("GET", f"/connectors/{_seg(name)}/status"))

    def topics(self, name: str) -> list[str]:
        body = self._json("GET", f"/connectors/{_seg(name)}/topics")
        return sorted(body.get(name, {}).get("topics", []))

    def reset_topics(self, name: str) -> None:
        self._t.request("PUT", f"/connectors/{_seg(name)}/topics/reset")

    def pause(self, name: str) -> None:
        self._t.request("PUT", f"/connectors/{_seg(name)}/pause")

    def resume(self, name: str) -> None:
        self._t.request("PUT", f"/connectors/{_seg(name)}/resume")

    def stop(self, name: str) -> None:
        """Stop the connector and its tasks but keep the config (needed before offset changes)."""
        self._t.request("PUT", f"/connectors/{_seg(name)}/stop")

    def task_configs(self, name: str) -> list[dict[str, str]]:
        """The configs the connector generated for its tasks (what the running tasks use)."""
        return [dict(t.get("config") or {}) for t in self._json("GET", f"/connectors/{_seg(name)}/tasks")]

    def restart(self, name: str, *, include_tasks: bool = True, only_failed: bool = False) -> None:
        params = {"includeTasks": str(include_tasks).lower(), "onlyFailed": str(only_failed).lower()}
        self._t.request("POST", f"/connectors/{_seg(name)}/restart", params=params)

    def restart_task(self, name: str, task: int) -> None:
        self._t.request("POST", f"/connectors/{_seg(name)}/tasks/{task}/restart")

    def delete(self, name: str) -> None:
        self._t.request("DELETE", f"/connectors/{_seg(name)}")

    # -- offsets (connector must be STOPPED for alter/reset) -----------------------------------
    def offsets(self, name: str) -> list[SourceOffset]:
        body = self._json("GET", f"/connectors/{_seg(name)}/offsets")
        # Right after a reset Connect can still list a partition with a null offset (the reset's
        # tombstone read, the partition not yet dropped): null means "no offset", so it is left out.
        return [
            SourceOffset(o.get("partition", {}), o["offset"])
            for o in body.get("offsets", [])
            if o.get("offset") is not None
        ]

    def alter_offsets(self, name: str, offsets: Sequence[SourceOffset]) -> str:
        body = {"offsets": [{"partition": dict(o.partition), "offset": o.offset} for o in offsets]}
        return str(self._json("PATCH", f"/connectors/{_seg(name)}/offsets", json=body).get("message", ""))

    def reset_offsets(self, name: str) -> str:
        return str(self._json("DELETE", f"/connectors/{_seg(name)}/offsets").get("message", ""))
