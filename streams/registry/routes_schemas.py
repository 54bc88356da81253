"""``/schemas/...``: schemas by their global id, and the schema types this registry serves."""

from __future__ import annotations

from aiohttp import web

from streams.registry.rest import MEDIA_TYPE, answer, flag, int_param, schema_fields
from streams.registry.schema import SUPPORTED_TYPES
from streams.registry.service import REGISTRY

routes = web.RouteTableDef()


@routes.get("/schemas/ids/{id}")
async def get_schema(request: web.Request) -> web.Response:
    """By id. ``subject`` and ``format`` are accepted (Java's AvroConverter 7.0 sends ``subject``
    and ``fetchMaxId``); ids are global here, so the subject does not change the answer."""
    store = request.app[REGISTRY].store
    out = schema_fields(store.schema(int_param(request, "id")))
    if flag(request, "fetchMaxId"):
        out["maxId"] = store.max_id
    return answer(out)


@routes.get("/schemas/ids/{id}/schema")
async def get_raw_schema(request: web.Request) -> web.Response:
    record = request.app[REGISTRY].store.schema(int_param(request, "id"))
    return web.Response(text=record.schema, content_type=MEDIA_TYPE)


@routes.get("/schemas/ids/{id}/versions")
async def get_schema_versions(request: web.Request) -> web.Response:
    usages = request.app[REGISTRY].store.usages(int_param(request, "id"), flag(request, "deleted"))
    subject = request.query.get("subject")
    return answer(
        [
            {"subject": r.subject, "version": r.version}
            for r in usages
            if subject is None or r.subject == subject
        ]
    )


@routes.get("/schemas/ids/{id}/subjects")
async def get_schema_subjects(request: web.Request) -> web.Response:
    usages = request.app[REGISTRY].store.usages(int_param(request, "id"), flag(request, "deleted"))
    subject = request.query.get("subject")
    return answer(sorted({r.subject for r in usages if subject is None or r.subject == subject}))


@routes.get("/schemas/types")
async def schema_types(request: web.Request) -> web.Response:
    return answer(list(SUPPORTED_TYPES))


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    return answer({})
