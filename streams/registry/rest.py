"""REST plumbing shared by the route modules: the media type, JSON answers, errors as the API
defines them, and request parsing (query flags, schema bodies)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from streams.registry.errors import ErrorCode, RegistryError
from streams.registry.records import SchemaRecord
from streams.registry.schema import AVRO, Reference, SchemaSource

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type=MEDIA_TYPE)


def error(code: int, message: str, status: int) -> web.Response:
    return answer({"error_code": code, "message": message}, status)


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as ``{"error_code", "message"}``, like Confluent's registry answers."""
    try:
        return await handler(request)
    except RegistryError as exc:
        return error(exc.code.value, exc.message, exc.code.http_status)
    except web.HTTPException as exc:
        return error(exc.status, f"HTTP {exc.status} {exc.reason}", exc.status)
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error(ErrorCode.STORE_ERROR.value, "Internal registry error; see the registry log.", 500)


def flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "false").lower() == "true"


def int_param(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    try:
        return int(raw)
    except ValueError:
        raise web.HTTPNotFound from None


async def schema_body(request: web.Request) -> tuple[SchemaSource, str]:
    """The ``{schema, schemaType?, references?}`` body of register/lookup/compatibility requests."""
    try:
        body = json.loads(await request.text())
    except ValueError as exc:
        raise RegistryError(ErrorCode.INVALID_SCHEMA, f"Request body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str) or not body["schema"].strip():
        msg = 'Empty schema: send {"schema": "<schema JSON as a string>"}'
        raise RegistryError(ErrorCode.INVALID_SCHEMA, msg)
    refs = body.get("references") or []
    if not isinstance(refs, list):
        raise RegistryError(ErrorCode.INVALID_SCHEMA, "references must be a list")
    source = SchemaSource(body["schema"], tuple(Reference.from_json(r) for r in refs))
    return source, str(body.get("schemaType") or AVRO)


async def imported_id(request: web.Request) -> tuple[int, int | None] | None:
    """The ``id`` (and ``version``) a register body carries: only IMPORT mode accepts them."""
    body = json.loads(await request.text())  # already validated by ``schema_body``
    raw_id, raw_version = body.get("id"), body.get("version")
    if raw_id is None or raw_id == -1:  # Java's client sends -1 for "no id"
        return None
    if not isinstance(raw_id, int) or raw_id < 1 or not isinstance(raw_version, int | None):
        raise RegistryError(ErrorCode.INVALID_SCHEMA, "id and version must be positive integers")
    return raw_id, raw_version if raw_version and raw_version > 0 else None


def schema_fields(record: SchemaRecord) -> dict[str, Any]:
    """``schema`` plus ``schemaType``/``references`` only when they say something (as Confluent)."""
    out: dict[str, Any] = {"schema": record.schema}
    if record.schema_type != AVRO:
        out["schemaType"] = record.schema_type
    if record.references:
        out["references"] = [r.to_json() for r in record.references]
    return out


def version_json(record: SchemaRecord) -> dict[str, Any]:
    return {
        "subject": record.subject,
        "version": record.version,
        "id": record.schema_id,
        **schema_fields(record),
    }
