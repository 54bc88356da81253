"""``/subjects/...``: register, look up, list and delete schemas under a subject."""

from __future__ import annotations

from aiohttp import web

from streams.registry.errors import ErrorCode, RegistryError
from streams.registry.rest import MEDIA_TYPE, answer, flag, imported_id, schema_body, version_json
from streams.registry.service import REGISTRY, Registry
from streams.registry.store import parse_version

routes = web.RouteTableDef()


def _registry(request: web.Request) -> Registry:
    return request.app[REGISTRY]


@routes.get("/subjects")
async def list_subjects(request: web.Request) -> web.Response:
    """``deleted=true`` adds soft-deleted subjects; ``deletedOnly=true`` lists only those."""
    prefix, store = request.query.get("subjectPrefix", ""), _registry(request).store
    if flag(request, "deletedOnly"):
        subjects = sorted(set(store.subjects(deleted=True)) - set(store.subjects()))
    else:
        subjects = store.subjects(deleted=flag(request, "deleted"))
    return answer([s for s in subjects if s.startswith(prefix)])


@routes.get("/subjects/{subject}/versions")
async def list_versions(request: web.Request) -> web.Response:
    store = _registry(request).store
    return answer([r.version for r in store.records(request.match_info["subject"], flag(request, "deleted"))])


@routes.get("/subjects/{subject}/versions/{version}")
async def get_version(request: web.Request) -> web.Response:
    version = parse_version(request.match_info["version"])
    record = _registry(request).store.record(request.match_info["subject"], version, flag(request, "deleted"))
    return answer(version_json(record))


@routes.get("/subjects/{subject}/versions/{version}/schema")
async def get_version_schema(request: web.Request) -> web.Response:
    version = parse_version(request.match_info["version"])
    record = _registry(request).store.record(request.match_info["subject"], version, flag(request, "deleted"))
    return web.Response(text=record.schema, content_type=MEDIA_TYPE)


@routes.get("/subjects/{subject}/versions/{version}/referencedby")
async def referenced_by(request: web.Request) -> web.Response:
    subject, store = request.match_info["subject"], _registry(request).store
    record = store.record(subject, parse_version(request.match_info["version"]), deleted=True)
    return answer(store.referenced_by(subject, record.version))


@routes.post("/subjects/{subject}/versions")
async def register(request: web.Request) -> web.Response:
    source, schema_type = await schema_body(request)
    imported = await imported_id(request)
    record = await _registry(request).register(request.match_info["subject"], source, schema_type, imported)
    # Newer clients read version/schema from this answer; older ones only need ``id``.
    return answer({"id": record.schema_id, "version": record.version, "subject": record.subject})


@routes.post("/subjects/{subject}")
async def lookup(request: web.Request) -> web.Response:
    """Is this schema registered under the subject? Java's AvroConverter needs ``version`` here."""
    registry, subject = _registry(request), request.match_info["subject"]
    source, schema_type = await schema_body(request)
    parsed = registry.parse(source, schema_type)
    found = registry.find(subject, parsed, deleted=flag(request, "deleted"))
    if found is None:
        raise RegistryError(ErrorCode.SCHEMA_NOT_FOUND, f"Schema not found under subject '{subject}'.")
    return answer(version_json(found))


@routes.delete("/subjects/{subject}/versions/{version}")
async def delete_version(request: web.Request) -> web.Response:
    version = parse_version(request.match_info["version"])
    deleted = await _registry(request).delete_version(
        request.match_info["subject"], version, permanent=flag(request, "permanent")
    )
    return answer(deleted)


@routes.delete("/subjects/{subject}")
async def delete_subject(request: web.Request) -> web.Response:
    versions = await _registry(request).delete_subject(
        request.match_info["subject"], permanent=flag(request, "permanent")
    )
    return answer(versions)
