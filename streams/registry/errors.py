"""Registry error codes as one enum, so clients classify failures by code, never by text.

The codes and their HTTP statuses are the Confluent Schema Registry's: the first three digits of a
five-digit code are the status (40401 → 404); 409 and 422 alone are also used as codes.
"""

from __future__ import annotations

from enum import IntEnum

from streams.errors import ChangefeedError


class ErrorCode(IntEnum):
    NOT_FOUND = 404
    INCOMPATIBLE_SCHEMA = 409
    UNPROCESSABLE = 422
    SUBJECT_NOT_FOUND = 40401
    VERSION_NOT_FOUND = 40402
    SCHEMA_NOT_FOUND = 40403
    SUBJECT_SOFT_DELETED = 40404
    SUBJECT_NOT_SOFT_DELETED = 40405
    VERSION_SOFT_DELETED = 40406
    VERSION_NOT_SOFT_DELETED = 40407
    SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED = 40408
    SUBJECT_LEVEL_MODE_NOT_CONFIGURED = 40409
    INVALID_SCHEMA = 42201
    INVALID_VERSION = 42202
    INVALID_COMPATIBILITY_LEVEL = 42203
    INVALID_MODE = 42204
    OPERATION_NOT_PERMITTED = 42205
    REFERENCE_EXISTS = 42206
    STORE_ERROR = 50001
    OPERATION_TIMEOUT = 50002

    @property
    def http_status(self) -> int:
        return self.value if self.value < 1000 else self.value // 100


class RegistryError(ChangefeedError):
    """An answer the registry gives instead of a result: carries the code and a human message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code.value}: {message}")
