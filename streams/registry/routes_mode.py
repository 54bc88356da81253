"""``/mode``: READWRITE / READONLY / IMPORT, global and per subject (see :mod:`.modes`)."""

from __future__ import annotations

import json

from aiohttp import web

from streams.registry.errors import ErrorCode, RegistryError
from streams.registry.modes import parse_mode
from streams.registry.rest import answer, flag
from streams.registry.service import REGISTRY

routes = web.RouteTableDef()


@routes.get("/mode")
@routes.get("/mode/{subject}")
async def get_mode(request: web.Request) -> web.Response:
    subject = request.match_info.get("subject")
    mode = request.app[REGISTRY].store.mode(subject, default_to_global=flag(request, "defaultToGlobal"))
    if mode is None:
        msg = f"Subject '{subject}' does not have subject-level mode configured."
        raise RegistryError(ErrorCode.SUBJECT_LEVEL_MODE_NOT_CONFIGURED, msg)
    return answer({"mode": mode.value})


@routes.put("/mode")
@routes.put("/mode/{subject}")
async def put_mode(request: web.Request) -> web.Response:
    try:
        raw = json.loads(await request.text()).get("mode")
    except (ValueError, AttributeError):
        raw = None
    mode = parse_mode(raw)
    await request.app[REGISTRY].set_mode(request.match_info.get("subject"), mode, flag(request, "force"))
    return answer({"mode": mode.value})


@routes.delete("/mode/{subject}")
async def delete_mode(request: web.Request) -> web.Response:
    """Back to the global mode; answers the mode the subject had."""
    previous = await request.app[REGISTRY].delete_mode(request.match_info["subject"])
    return answer({"mode": previous.value})
