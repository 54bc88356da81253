"""The worker's ``/healthz`` and ``/readyz``, served beside ``/metrics`` on the metrics port.

- ``/healthz`` (liveness): the consume loop turned recently. A loop that has not polled for
  ``STALE_AFTER_S`` is stuck; Kafka's group already dropped it (``max.poll.interval.ms`` is 300 s
  by default), so a restart loses nothing.
- ``/readyz`` (readiness): started (sink schema checked, consumer subscribed), not stopping, live.

200 with ``ok`` or 503 with the reason on one line, so a probe's log says why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

STALE_AFTER_S = 300.0

StartResponse = Callable[..., Any]


class Probes:
    def __init__(
        self, stale_after_s: float = STALE_AFTER_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stale_after_s, self.clock = stale_after_s, clock
        self.started = False
        self.stopping = False
        self.last_poll: float | None = None

    def polled(self) -> None:
        self.last_poll = self.clock()

    def health(self) -> str:
        """Empty when live, else why not."""
        if self.started and self.last_poll is not None:
            idle = self.clock() - self.last_poll
            if idle > self.stale_after_s:
                return f"consume loop has not polled for {idle:.0f} s"
        return ""

    def readiness(self) -> str:
        if self.stopping:
            return "stopping"
        if not self.started:
            return "starting"
        return self.health()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the worker's log."""


def app(
    registry: CollectorRegistry, probes: Probes
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        check = {"/healthz": probes.health, "/readyz": probes.readiness}.get(path)
        if check is None:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        reason = check()
        status = "503 Service Unavailable" if reason else "200 OK"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [(reason or "ok").encode() + b"\n"]

    return route


def serve_probes(
    registry: CollectorRegistry, probes: Probes, port: int, host: str = "127.0.0.1"
) -> WSGIServer:
    """``/metrics``, ``/healthz``, ``/readyz`` on one port, in a daemon thread (OSError: port taken)."""
    server = make_server(host, port, app(registry, probes), _Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="changefeed-metrics", daemon=True).start()
    return server
