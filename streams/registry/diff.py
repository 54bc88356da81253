"""What changed between two Avro schemas, field by field (for ``changefeed schemas diff``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldChange:
    path: str  # dotted field path, e.g. ``data.email``
    change: str  # added / removed / type / default / doc
    old: str
    new: str


_MISSING = object()


def diff(old: Any, new: Any) -> list[FieldChange]:
    """Changes from ``old`` to ``new`` (parsed schema JSON), nested records included."""
    return list(_diff_record(old, new, ""))


def _diff_record(old: Any, new: Any, prefix: str) -> list[FieldChange]:
    old_fields, new_fields = _fields(old), _fields(new)
    changes: list[FieldChange] = []
    for name, field in new_fields.items():
        path = f"{prefix}{name}"
        before = old_fields.get(name)
        if before is None:
            shown = _show(field["type"], field.get("default", _MISSING))
            changes.append(FieldChange(path, "added", "", shown))
            continue
        changes += _diff_field(before, field, path)
    changes += [
        FieldChange(f"{prefix}{name}", "removed", _show(f["type"]), "")
        for name, f in old_fields.items()
        if name not in new_fields
    ]
    return changes


def _diff_field(old: dict[str, Any], new: dict[str, Any], path: str) -> list[FieldChange]:
    old_record, new_record = _record_of(old["type"]), _record_of(new["type"])
    if old_record is not None and new_record is not None:
        changes = _diff_record(old_record, new_record, f"{path}.")
    elif _show(old["type"]) != _show(new["type"]):
        changes = [FieldChange(path, "type", _show(old["type"]), _show(new["type"]))]
    else:
        changes = []
    if old.get("default", _MISSING) != new.get("default", _MISSING):
        changes.append(FieldChange(path, "default", _value(old), _value(new)))
    if old.get("doc") != new.get("doc"):
        changes.append(FieldChange(path, "doc", old.get("doc") or "", new.get("doc") or ""))
    return changes


def _fields(schema: Any) -> dict[str, dict[str, Any]]:
    if isinstance(schema, dict) and schema.get("type") == "record":
        return {f["name"]: f for f in schema.get("fields", [])}
    return {}


def _record_of(field_type: Any) -> Any:
    return field_type if isinstance(field_type, dict) and field_type.get("type") == "record" else None


def _show(field_type: Any, default: Any = _MISSING) -> str:
    """A type as a reader sees it; named types by name, so nested records stay one line."""
    if isinstance(field_type, list):
        text = " | ".join(_show(t) for t in field_type)
    elif isinstance(field_type, dict):
        kind = field_type.get("type")
        text = field_type.get("name") or (
            f"{kind}<{field_type['logicalType']}>" if "logicalType" in field_type else _show(kind)
        )
        if kind == "array":
            text = f"array<{_show(field_type['items'])}>"
        elif kind == "map":
            text = f"map<{_show(field_type['values'])}>"
    else:
        text = str(field_type)
    return text if default is _MISSING else f"{text} = {json.dumps(default)}"


def _value(field: dict[str, Any]) -> str:
    default = field.get("default", _MISSING)
    return "(none)" if default is _MISSING else json.dumps(default)
