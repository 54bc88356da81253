"""Registry modes (READWRITE, READONLY, IMPORT), per subject and global, as Confluent defines them.

READONLY refuses every write to the subject (register, delete, config) with 42205 so a registry
can be frozen during a migration; mode changes stay allowed, or READONLY could never be left.
IMPORT is for copying a registry: schemas are registered with the id (and version) they had at
the source and compatibility is not checked, while an id sent in READWRITE mode is refused, so a
producer can never pick ids by accident.
"""

from __future__ import annotations

from enum import StrEnum

from streams.registry.errors import ErrorCode, RegistryError


class Mode(StrEnum):
    READWRITE = "READWRITE"
    READONLY = "READONLY"
    IMPORT = "IMPORT"


DEFAULT_MODE = Mode.READWRITE


def parse_mode(raw: object) -> Mode:
    try:
        return Mode(str(raw).upper())
    except ValueError:
        modes = ", ".join(Mode)
        msg = f'Invalid mode {raw!r}; send {{"mode": one of {modes}}}'
        raise RegistryError(ErrorCode.INVALID_MODE, msg) from None


def require_writable(mode: Mode, subject: str | None) -> None:
    """Deletes and config changes: anything but READONLY may write."""
    if mode is Mode.READONLY:
        where = f"Subject '{subject}'" if subject else "The registry"
        raise RegistryError(ErrorCode.OPERATION_NOT_PERMITTED, f"{where} is in read-only mode.")


def require_register(mode: Mode, subject: str, explicit_id: int | None) -> None:
    """Registering: an explicit id needs IMPORT, an allocated one READWRITE (as Confluent)."""
    require_writable(mode, subject)
    if explicit_id is not None and mode is not Mode.IMPORT:
        msg = f"Subject '{subject}' is not in import mode: a schema id may only be given in IMPORT mode."
        raise RegistryError(ErrorCode.OPERATION_NOT_PERMITTED, msg)
    if explicit_id is None and mode is not Mode.READWRITE:
        msg = f"Subject '{subject}' is not in read-write mode: in IMPORT mode send the schema's id."
        raise RegistryError(ErrorCode.OPERATION_NOT_PERMITTED, msg)
