"""What the registry does on writes: validate, check compatibility, allocate ids, log, answer.

All writes run under one lock and go through the log before they are visible, so two concurrent
registrations can never be given one id for two different schemas.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from streams.registry import compatibility, records
from streams.registry.compatibility import CompatibilityLevel
from streams.registry.errors import ErrorCode, RegistryError
from streams.registry.log import SchemaLog
from streams.registry.modes import DEFAULT_MODE, Mode, require_register, require_writable
from streams.registry.records import SchemaRecord
from streams.registry.schema import ParsedSchema, SchemaSource, parse
from streams.registry.store import LATEST, SchemaStore


class Registry:
    def __init__(self, store: SchemaStore, log: SchemaLog) -> None:
        self.store = store
        self._log = log
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._log.start(self.store.apply)

    async def stop(self) -> None:
        await self._log.stop()

    def parse(self, source: SchemaSource, schema_type: str) -> ParsedSchema:
        return parse(source, self.store.resolve, schema_type)

    def find(self, subject: str, parsed: ParsedSchema, deleted: bool = False) -> SchemaRecord | None:
        """The subject's version holding a canonically equal schema (newest first), if any."""
        for record in reversed(self.store.records(subject, deleted)):
            if self.store.parsed(record.schema_id).canonical == parsed.canonical:
                return record
        return None

    def problems(self, subject: str, parsed: ParsedSchema, against: list[SchemaRecord]) -> list[str]:
        level = self.store.level(subject) or compatibility.DEFAULT_LEVEL
        previous = [(r.version, self.store.parsed(r.schema_id).avro) for r in against]
        return compatibility.check(level, parsed.avro, previous)

    def mode(self, subject: str | None) -> Mode:
        return self.store.mode(subject) or DEFAULT_MODE

    async def register(
        self,
        subject: str,
        source: SchemaSource,
        schema_type: str,
        imported: tuple[int, int | None] | None = None,
    ) -> SchemaRecord:
        """Register under ``subject``; ``imported`` = (id, version or None) in IMPORT mode."""
        async with self._lock:
            require_register(self.mode(subject), subject, imported[0] if imported else None)
            parsed = self.parse(source, schema_type)
            live = self._live(subject)
            if live and (same := self.find(subject, parsed)) is not None:
                return same
            if imported is not None:
                return await self._append(
                    subject, parsed, schema_type, *self._import_target(parsed, subject, imported)
                )
            reasons = self.problems(subject, parsed, live)
            if reasons:
                level = self.store.level(subject)
                msg = (
                    f"Schema being registered is incompatible with an earlier schema for subject "
                    f"'{subject}' under {level}; details: {reasons}"
                )
                raise RegistryError(ErrorCode.INCOMPATIBLE_SCHEMA, msg)
            schema_id = self.store.id_for(parsed.canonical) or self.store.max_id + 1
            return await self._append(
                subject, parsed, schema_type, schema_id, self.store.next_version(subject)
            )

    def _import_target(
        self, parsed: ParsedSchema, subject: str, imported: tuple[int, int | None]
    ) -> tuple[int, int]:
        """The id/version an import asks for, refused if either already names something else."""
        schema_id, version = imported[0], imported[1] or self.store.next_version(subject)
        holder = self.store.raw_schema(schema_id)
        if holder is not None and self.store.parsed(schema_id).canonical != parsed.canonical:
            msg = f"Overwrite new schema with id {schema_id} is not permitted: it holds another schema."
            raise RegistryError(ErrorCode.OPERATION_NOT_PERMITTED, msg)
        if self.store.raw_record(subject, version) is not None:
            msg = f"Version {version} of subject '{subject}' already exists; import needs a new version."
            raise RegistryError(ErrorCode.OPERATION_NOT_PERMITTED, msg)
        return schema_id, version

    async def _append(
        self, subject: str, parsed: ParsedSchema, schema_type: str, schema_id: int, version: int
    ) -> SchemaRecord:
        record = SchemaRecord(
            subject, version, schema_id, parsed.source.text, parsed.source.references, schema_type.upper()
        )
        await self._log.append(records.schema_key(subject, version), records.schema_value(record))
        return self.store.record(subject, version)

    def _live(self, subject: str) -> list[SchemaRecord]:
        try:
            return self.store.records(subject)
        except RegistryError:
            return []

    async def delete_version(self, subject: str, version: int, permanent: bool) -> int:
        async with self._lock:
            require_writable(self.mode(subject), subject)
            # A soft delete of "latest" means the latest live version; by number, any version.
            record = self.store.record(subject, version, deleted=permanent or version != LATEST)
            await self._delete(record, permanent)
            return record.version

    async def delete_subject(self, subject: str, permanent: bool) -> list[int]:
        async with self._lock:
            require_writable(self.mode(subject), subject)
            every = self.store.records(subject, deleted=True)
            if not permanent and all(r.deleted for r in every):
                raise RegistryError(ErrorCode.SUBJECT_SOFT_DELETED, f"Subject '{subject}' was soft deleted.")
            if permanent and any(not r.deleted for r in every):
                msg = f"Subject '{subject}' was not deleted first before being permanently deleted."
                raise RegistryError(ErrorCode.SUBJECT_NOT_SOFT_DELETED, msg)
            for record in every:
                if permanent or not record.deleted:
                    await self._delete(record, permanent)
            return [r.version for r in every if permanent or not r.deleted]

    async def _delete(self, record: SchemaRecord, permanent: bool) -> None:
        where = f"version {record.version} of subject '{record.subject}'"
        if permanent and not record.deleted:
            msg = f"{where} must be soft deleted before it is permanently deleted."
            raise RegistryError(ErrorCode.VERSION_NOT_SOFT_DELETED, msg)
        if not permanent and record.deleted:
            raise RegistryError(ErrorCode.VERSION_SOFT_DELETED, f"{where} was soft deleted.")
        if users := self.store.referenced_by(record.subject, record.version):
            raise RegistryError(ErrorCode.REFERENCE_EXISTS, f"{where} is referenced by schema ids {users}.")
        key = records.schema_key(record.subject, record.version)
        if permanent:
            # Remember the highest id first: a tombstone may compact the only record holding it.
            await self._log.append(records.watermark_key(), records.watermark_value(self.store.max_id))
            await self._log.append(key, None)
        else:
            soft = SchemaRecord(
                record.subject,
                record.version,
                record.schema_id,
                record.schema,
                record.references,
                record.schema_type,
                deleted=True,
            )
            await self._log.append(key, records.schema_value(soft))

    async def set_level(self, subject: str | None, level: CompatibilityLevel) -> None:
        async with self._lock:
            require_writable(self.mode(subject), subject)
            await self._log.append(records.config_key(subject), records.config_value(level.value))

    async def delete_level(self, subject: str | None) -> CompatibilityLevel:
        async with self._lock:
            require_writable(self.mode(subject), subject)
            previous = self.store.level(subject) or compatibility.DEFAULT_LEVEL
            await self._log.append(records.config_key(subject), None)
            return previous

    async def set_mode(self, subject: str | None, mode: Mode, force: bool) -> None:
        """IMPORT only onto an empty registry/subject unless forced: imported ids must not clash."""
        async with self._lock:
            if mode is Mode.IMPORT and not force:
                existing = [subject] if subject else self.store.subjects(deleted=True)
                if any(self.store.raw_records(s) for s in existing):
                    what = f"subject '{subject}'" if subject else "the registry"
                    msg = f"Cannot import since found existing schemas in {what}; hard-delete them or force."
                    raise RegistryError(ErrorCode.OPERATION_NOT_PERMITTED, msg)
            await self._log.append(records.mode_key(subject), records.mode_value(mode.value))

    async def delete_mode(self, subject: str | None) -> Mode:
        async with self._lock:
            previous = self.mode(subject)
            await self._log.append(records.mode_key(subject), None)
            return previous


REGISTRY = web.AppKey("registry", Registry)
