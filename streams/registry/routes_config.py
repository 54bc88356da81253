"""``/config`` and ``/compatibility``: compatibility levels and testing against them."""

from __future__ import annotations

import json

from aiohttp import web

from streams.registry.compatibility import CompatibilityLevel
from streams.registry.errors import ErrorCode, RegistryError
from streams.registry.rest import answer, flag, schema_body
from streams.registry.service import REGISTRY
from streams.registry.store import LATEST, parse_version

routes = web.RouteTableDef()


async def _level_body(request: web.Request) -> CompatibilityLevel:
    try:
        raw = json.loads(await request.text()).get("compatibility")
        return CompatibilityLevel(str(raw).upper())
    except (ValueError, AttributeError) as exc:
        levels = ", ".join(CompatibilityLevel)
        msg = f'Invalid compatibility level; send {{"compatibility": one of {levels}}}'
        raise RegistryError(ErrorCode.INVALID_COMPATIBILITY_LEVEL, msg) from exc


def _subject(request: web.Request) -> str | None:
    return request.match_info.get("subject")


@routes.get("/config")
@routes.get("/config/{subject}")
async def get_config(request: web.Request) -> web.Response:
    subject = _subject(request)
    level = request.app[REGISTRY].store.level(subject, default_to_global=flag(request, "defaultToGlobal"))
    if level is None:
        msg = f"Subject '{subject}' does not have subject-level compatibility configured."
        raise RegistryError(ErrorCode.SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED, msg)
    return answer({"compatibilityLevel": level.value})


@routes.put("/config")
@routes.put("/config/{subject}")
async def put_config(request: web.Request) -> web.Response:
    level = await _level_body(request)
    await request.app[REGISTRY].set_level(_subject(request), level)
    return answer({"compatibility": level.value})


@routes.delete("/config")
@routes.delete("/config/{subject}")
async def delete_config(request: web.Request) -> web.Response:
    previous = await request.app[REGISTRY].delete_level(_subject(request))
    return answer({"compatibilityLevel": previous.value})


@routes.post("/compatibility/subjects/{subject}/versions/{version}")
@routes.post("/compatibility/subjects/{subject}/versions")
async def test_compatibility(request: web.Request) -> web.Response:
    """Would registering this schema pass? A version tests against that version alone; ``latest``
    or no version tests the way registration would (all live versions for *_TRANSITIVE)."""
    registry, subject = request.app[REGISTRY], request.match_info["subject"]
    version = parse_version(request.match_info.get("version", "latest"))
    source, schema_type = await schema_body(request)
    parsed = registry.parse(source, schema_type)
    try:
        live = registry.store.records(subject)
    except RegistryError:
        if version != LATEST:
            raise
        live = []  # nothing registered yet: anything is compatible
    against = live if version == LATEST else [registry.store.record(subject, version)]
    reasons = registry.problems(subject, parsed, against)
    out: dict[str, object] = {"is_compatible": not reasons}
    if flag(request, "verbose"):
        out["messages"] = reasons
    return answer(out)
