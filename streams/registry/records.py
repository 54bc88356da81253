"""The records of the ``_schemas`` topic, in the key/value layout Confluent's registry uses.

Keys are JSON with a fixed field order so that compaction keeps exactly the latest record per
subject-version or config. A ``None`` value is a tombstone (hard delete / config removal).
``ID_WATERMARK`` is ours: it remembers the highest id ever issued, so a hard-deleted schema's id is
never handed out again after a restart (a consumer may still hold messages framed with it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from streams.registry.schema import AVRO, Reference


class KeyType(StrEnum):
    SCHEMA = "SCHEMA"
    CONFIG = "CONFIG"
    MODE = "MODE"
    ID_WATERMARK = "ID_WATERMARK"
    NOOP = "NOOP"


@dataclass(frozen=True)
class SchemaRecord:
    """One subject-version as written to the log."""

    subject: str
    version: int
    schema_id: int
    schema: str
    references: tuple[Reference, ...] = ()
    schema_type: str = AVRO
    deleted: bool = False


def schema_key(subject: str, version: int) -> bytes:
    return _dump({"keytype": KeyType.SCHEMA.value, "subject": subject, "version": version, "magic": 1})


def config_key(subject: str | None) -> bytes:
    return _dump({"keytype": KeyType.CONFIG.value, "subject": subject, "magic": 0})


def mode_key(subject: str | None) -> bytes:
    return _dump({"keytype": KeyType.MODE.value, "subject": subject, "magic": 0})


def watermark_key() -> bytes:
    return _dump({"keytype": KeyType.ID_WATERMARK.value, "magic": 0})


def schema_value(record: SchemaRecord) -> bytes:
    value: dict[str, Any] = {
        "subject": record.subject,
        "version": record.version,
        "id": record.schema_id,
        "schema": record.schema,
        "deleted": record.deleted,
    }
    if record.references:
        value["references"] = [r.to_json() for r in record.references]
    if record.schema_type != AVRO:
        value["schemaType"] = record.schema_type
    return _dump(value)


def parse_schema_value(value: dict[str, Any]) -> SchemaRecord:
    return SchemaRecord(
        subject=value["subject"],
        version=int(value["version"]),
        schema_id=int(value["id"]),
        schema=value["schema"],
        references=tuple(Reference.from_json(r) for r in value.get("references") or ()),
        schema_type=value.get("schemaType", AVRO),
        deleted=bool(value.get("deleted", False)),
    )


def config_value(level: str) -> bytes:
    return _dump({"compatibilityLevel": level})


def mode_value(mode: str) -> bytes:
    return _dump({"mode": mode})


def watermark_value(max_id: int) -> bytes:
    return _dump({"maxId": max_id})


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
