"""The dashboard's web server (aiohttp): the page, a server-sent-events feed, a JSON snapshot.

One collector task looks at the stack every ``interval_s`` (in a thread: the clients it reuses
are blocking) and wakes every open feed; a browser gets the newly rendered HTML as one event.
SSE, not a WebSocket: the data only flows server → browser, and ``EventSource`` reconnects by
itself. The registry is read every ``SLOW_EVERY`` looks only: it changes with deployments.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streams.dashboard.atomic import Watch
from streams.dashboard.collect import Snapshot, look
from streams.dashboard.exporter import SnapshotCollector
from streams.dashboard.history import History
from streams.dashboard.page import live, page
from streams.pipeline.metrics import PORT_TRIES
from streams.settings import Settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SLOW_EVERY = 15
DEFAULT_PORT = 8050

Look = Callable[[Settings, Sequence[str], str | None, bool], Snapshot]


class Dashboard:
    def __init__(
        self,
        settings: Settings,
        interval_s: float = 2.0,
        metrics_urls: Sequence[str] = (),
        schema: str | None = None,
        reader: Look = look,
    ) -> None:
        self.settings, self.interval_s, self.metrics_urls, self.schema = (
            settings,
            interval_s,
            metrics_urls,
            schema,
        )
        self.reader = reader
        self.history = History()
        self.watch = Watch()  # since when each atomic source is unowned / not releasing
        self.snapshot: Snapshot | None = None
        self.version = 0
        self.changed = asyncio.Condition()
        self.feeds: set[asyncio.Task[Any]] = set()
        self.registry = CollectorRegistry()
        self.registry.register(SnapshotCollector(lambda: self.snapshot))

    async def collect_forever(self) -> None:
        looks = 0
        while True:
            slow = looks % SLOW_EVERY == 0
            snap = await asyncio.to_thread(self.reader, self.settings, self.metrics_urls, self.schema, slow)
            if not slow and self.snapshot is not None:
                snap.subjects, snap.other_subjects = self.snapshot.subjects, self.snapshot.other_subjects
            snap.atomic = self.watch.judge(snap.at, snap.atomic_declared, snap.atomic_readings)
            self.history.add(snap)
            async with self.changed:
                self.snapshot, self.version = snap, self.version + 1
                self.changed.notify_all()
            looks += 1
            await asyncio.sleep(max(0.2, self.interval_s - snap.took_s))

    async def newer(self, than: int) -> Snapshot:
        async with self.changed:
            await self.changed.wait_for(lambda: self.version > than and self.snapshot is not None)
            assert self.snapshot is not None
            return self.snapshot

    def derived(self, snap: Snapshot) -> dict[str, Any]:
        out = snap.as_dict()
        for row in out["tables"]:
            p50, p99 = self.history.latency(row["table"])
            row.update(events_per_s=self.history.rate(row["table"]), latency_p50_s=p50, latency_p99_s=p99)
        out["series"] = self.history.series()
        return out

    # --- handlers ------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        snap = await self.newer(0)
        return web.Response(text=page(snap, self.history), content_type="text/html")

    async def api(self, request: web.Request) -> web.Response:
        snap = await self.newer(0)
        return web.json_response(self.derived(snap))

    async def metrics(self, request: web.Request) -> web.Response:
        await self.newer(0)
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        seen = 0
        task = asyncio.current_task()
        assert task is not None
        self.feeds.add(task)
        try:
            while True:
                snap = await self.newer(seen)
                seen = self.version
                data = json.dumps({"html": live(snap, self.history), "at": snap.at})
                await response.write(f"event: snapshot\ndata: {data}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the browser went away, or the server stops
        finally:
            self.feeds.discard(task)
        return response

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_get("/events", self.events)
        app.router.add_get("/api/snapshot", self.api)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_static("/static", STATIC)
        app.cleanup_ctx.append(self._collector)
        app.on_shutdown.append(self._end_feeds)
        return app

    async def _end_feeds(self, app: web.Application) -> None:
        """An open feed never ends by itself: end them so a stop does not wait for them."""
        for task in list(self.feeds):
            task.cancel()

    async def _collector(self, app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self.collect_forever())
        yield
        task.cancel()


def default_metrics_urls(settings: Settings) -> list[str]:
    """Where workers on this host serve metrics: the configured port and the next few (a worker
    whose port is taken by another one on the same host takes the next free one)."""
    port = settings.worker.metrics_port
    return [f"http://127.0.0.1:{port + i}/metrics" for i in range(PORT_TRIES)] if port else []


def serve(dashboard: Dashboard, host: str, port: int, on_ready: Callable[[str], None] | None = None) -> None:
    """Run until interrupted (Ctrl-C / SIGTERM)."""

    def printed(*args: Any, **kw: Any) -> None:
        if on_ready is not None:
            on_ready(f"http://{host}:{port}/")

    web.run_app(
        dashboard.app(),
        host=host,
        port=port,
        print=printed,
        access_log=None,
        handle_signals=True,
        shutdown_timeout=5,
    )
