"""``/schemas/...``: schemas by their global id, and the schema types this registry serves."""

from __future__ import annotations

from aiohttp import web

from streams.registry.errors import ErrorCode, RegistryError
from streams.registry.rest import MEDIA_TYPE, answer, flag, int_param, schema_fields, version_json
from streams.registry.schema import SUPPORTED_TYPES
from streams.registry.service import REGISTRY

routes = web.RouteTableDef()


@routes.get("/schemas")
async def list_schemas(request: web.Request) -> web.Response:
    """Every subject-version with its schema, as Confluent lists them: ``subjectPrefix``,
    ``deleted``, ``latestOnly``, and ``offset``/``limit`` paging (``limit=-1``: no limit)."""
    found = request.app[REGISTRY].store.every_record(flag(request, "deleted"))
    found = [r for r in found if r.subject.startswith(request.query.get("subjectPrefix", ""))]
    if flag(request, "latestOnly"):
        latest = {r.subject: r for r in found}  # sorted by version, so the last one wins
        found = [r for r in found if latest[r.subject] is r]
    offset, limit = _query_int(request, "offset", 0), _query_int(request, "limit", -1)
    page = found[offset:] if limit < 0 else found[offset : offset + limit]
    return answer([version_json(r) for r in page])


def _query_int(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        msg = f"Query parameter {name} must be an integer"
        raise RegistryError(ErrorCode.UNPROCESSABLE, msg) from None


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
