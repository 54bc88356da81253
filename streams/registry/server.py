"""The registry's aiohttp application: routes, JSON errors, and the log replayed before serving.

aiohttp runs startup hooks before it binds the port, so ``GET /subjects`` answering 200 means the
whole ``_schemas`` topic has been replayed: the health probe is also the readiness probe.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from streams.registry import routes_config, routes_mode, routes_schemas, routes_subjects
from streams.registry.kafka_log import KafkaLog
from streams.registry.rest import errors_as_json
from streams.registry.service import REGISTRY, Registry
from streams.registry.store import SchemaStore
from streams.settings import Settings

log = logging.getLogger(__name__)


def make_app(registry: Registry) -> web.Application:
    app = web.Application(middlewares=[errors_as_json])
    app[REGISTRY] = registry
    for module in (routes_subjects, routes_schemas, routes_config, routes_mode):
        app.add_routes(module.routes)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await registry.start()
        yield
        await registry.stop()

    app.cleanup_ctx.append(lifecycle)
    return app


def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM on the configured loopback address, backed by Kafka."""
    log_ = KafkaLog(settings.kafka.bootstrap_servers, settings.registry.topic)
    app = make_app(Registry(SchemaStore(), log_))
    log.info("schema registry on %s, topic %s", settings.registry.url, settings.registry.topic)
    web.run_app(app, host=settings.registry.host, port=settings.registry.port, access_log=None, print=None)
