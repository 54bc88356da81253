"""The registry's state, rebuilt by applying ``_schemas`` records in log order.

Only ``apply`` changes state, and only the log calls it: every write goes to Kafka first and is
served once read back, so memory never holds anything the topic does not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator

from streams.registry import records
from streams.registry.compatibility import DEFAULT_LEVEL, CompatibilityLevel
from streams.registry.errors import ErrorCode, RegistryError
from streams.registry.modes import DEFAULT_MODE, Mode
from streams.registry.records import KeyType, SchemaRecord
from streams.registry.schema import ParsedSchema, Reference, SchemaSource, parse

log = logging.getLogger(__name__)
LATEST = -1


def parse_version(spec: str) -> int:
    """A version path segment: a positive int, or ``latest`` / ``-1`` (→ ``LATEST``)."""
    if spec == "latest":
        return LATEST
    try:
        version = int(spec)
    except ValueError:
        version = 0
    if version == LATEST or version >= 1:
        return version
    msg = f"The specified version '{spec}' is not a valid version id. Use 'latest' or a positive integer."
    raise RegistryError(ErrorCode.INVALID_VERSION, msg)


def _visible(found: Iterable[SchemaRecord], deleted: bool) -> bool:
    return any(deleted or not r.deleted for r in found)


class SchemaStore:
    def __init__(self) -> None:
        self._subjects: dict[str, dict[int, SchemaRecord]] = {}
        self._schemas: dict[int, SchemaRecord] = {}
        self._parsed: dict[int, ParsedSchema] = {}
        self._configs: dict[str | None, CompatibilityLevel] = {}
        self._modes: dict[str | None, Mode] = {}
        self.max_id = 0

    def apply(self, key: bytes, value: bytes | None) -> None:
        """Apply one log record; malformed records are logged and skipped, never fatal on replay."""
        try:
            k = json.loads(key)
            v = json.loads(value) if value is not None else None
            kind = k.get("keytype")
            if kind == KeyType.SCHEMA:
                self._apply_schema(k["subject"], int(k["version"]), v)
            elif kind == KeyType.CONFIG:
                self._apply_config(k.get("subject"), v)
            elif kind == KeyType.MODE:
                self._apply_mode(k.get("subject"), v)
            elif kind == KeyType.ID_WATERMARK and v is not None:
                self.max_id = max(self.max_id, int(v["maxId"]))
        except (ValueError, KeyError, TypeError, AttributeError, RegistryError):
            log.warning("skipping malformed _schemas record key=%r", key, exc_info=True)

    def _apply_schema(self, subject: str, version: int, value: dict[str, object] | None) -> None:
        versions = self._subjects.setdefault(subject, {})
        if value is None:
            gone = versions.pop(version, None)
            if gone and not any(r.schema_id == gone.schema_id for r in self._all_records()):
                self._schemas.pop(gone.schema_id, None)
                self._parsed.pop(gone.schema_id, None)
            return
        record = records.parse_schema_value(value)
        versions[version] = record
        self._schemas.setdefault(record.schema_id, record)
        self.max_id = max(self.max_id, record.schema_id)

    def _apply_config(self, subject: str | None, value: dict[str, object] | None) -> None:
        if value is None:
            self._configs.pop(subject, None)
        else:
            self._configs[subject] = CompatibilityLevel(str(value["compatibilityLevel"]))

    def _apply_mode(self, subject: str | None, value: dict[str, object] | None) -> None:
        if value is None:
            self._modes.pop(subject, None)
        else:
            self._modes[subject] = Mode(str(value["mode"]))

    def _all_records(self) -> Iterator[SchemaRecord]:
        for versions in self._subjects.values():
            yield from versions.values()

    # -- queries ---------------------------------------------------------------------------------

    def subjects(self, deleted: bool = False) -> list[str]:
        return sorted(s for s, vs in self._subjects.items() if _visible(vs.values(), deleted))

    def records(self, subject: str, deleted: bool = False) -> list[SchemaRecord]:
        """The subject's versions, oldest first; 40401 if it has none (live ones unless ``deleted``)."""
        found = [r for _, r in sorted(self._subjects.get(subject, {}).items()) if deleted or not r.deleted]
        if not found:
            raise RegistryError(ErrorCode.SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        return found

    def record(self, subject: str, version: int, deleted: bool = False) -> SchemaRecord:
        candidates = self.records(subject, deleted)
        if version == LATEST:
            return candidates[-1]
        for r in candidates:
            if r.version == version:
                return r
        msg = f"Version {version} not found for subject '{subject}'."
        raise RegistryError(ErrorCode.VERSION_NOT_FOUND, msg)

    def raw_record(self, subject: str, version: int) -> SchemaRecord | None:
        """The record for a subject-version including soft-deleted ones, without raising."""
        return self._subjects.get(subject, {}).get(version)

    def raw_records(self, subject: str) -> list[SchemaRecord]:
        """Every version still in the log (soft-deleted too), without raising."""
        return list(self._subjects.get(subject, {}).values())

    def raw_schema(self, schema_id: int) -> SchemaRecord | None:
        return self._schemas.get(schema_id)

    def next_version(self, subject: str) -> int:
        return max(self._subjects.get(subject, {}), default=0) + 1

    def schema(self, schema_id: int) -> SchemaRecord:
        found = self._schemas.get(schema_id)
        if found is None:
            raise RegistryError(ErrorCode.SCHEMA_NOT_FOUND, f"Schema {schema_id} not found.")
        return found

    def usages(self, schema_id: int, deleted: bool = False) -> list[SchemaRecord]:
        self.schema(schema_id)
        return sorted(
            (r for r in self._all_records() if r.schema_id == schema_id and (deleted or not r.deleted)),
            key=lambda r: (r.subject, r.version),
        )

    def referenced_by(self, subject: str, version: int) -> list[int]:
        target = (subject, version)
        return sorted(
            {
                r.schema_id
                for r in self._all_records()
                if not r.deleted and any((ref.subject, ref.version) == target for ref in r.references)
            }
        )

    def level(self, subject: str | None, default_to_global: bool = True) -> CompatibilityLevel | None:
        found = self._configs.get(subject)
        if found is None and (subject is None or default_to_global):
            return self._configs.get(None, DEFAULT_LEVEL)
        return found

    def mode(self, subject: str | None, default_to_global: bool = True) -> Mode | None:
        found = self._modes.get(subject)
        if found is None and (subject is None or default_to_global):
            return self._modes.get(None, DEFAULT_MODE)
        return found

    def every_record(self, deleted: bool = False) -> list[SchemaRecord]:
        """All subject-versions, by subject then version (for ``GET /schemas``)."""
        found = (r for r in self._all_records() if deleted or not r.deleted)
        return sorted(found, key=lambda r: (r.subject, r.version))

    def parsed(self, schema_id: int) -> ParsedSchema:
        """The parsed schema for an id (cached: parsing is the costly part of a compatibility check)."""
        found = self._parsed.get(schema_id)
        if found is None:
            record = self.schema(schema_id)
            source = SchemaSource(record.schema, record.references)
            found = self._parsed[schema_id] = parse(source, self.resolve, record.schema_type)
        return found

    def resolve(self, ref: Reference) -> SchemaSource:
        """A reference's schema text; an unknown reference makes the referring schema invalid."""
        record = self.raw_record(ref.subject, ref.version)
        if record is None:
            msg = f"Reference '{ref.name}' points to {ref.subject} version {ref.version}, which is missing."
            raise RegistryError(ErrorCode.INVALID_SCHEMA, msg)
        return SchemaSource(record.schema, record.references)

    def id_for(self, canonical: str) -> int | None:
        """The id already issued for a canonically equal schema, so equal schemas share one id."""
        for schema_id in list(self._schemas):
            try:
                if self.parsed(schema_id).canonical == canonical:
                    return schema_id
            except RegistryError:  # a stored schema whose reference was hard-deleted: never equal
                continue
        return None
