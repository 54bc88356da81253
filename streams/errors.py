"""The one exception tree of changefeed.

    ChangefeedError
    ├── ConfigError              bad settings or definitions; fix the input and rerun
    ├── StackError               the local process stack could not start/stop a service
    ├── TransientError           retry with backoff; never dead-letter, never commit past it
    │   ├── SinkUnavailableError     the sink database is down or a transaction failed retryably
    │   ├── RegistryUnavailableError the schema registry did not answer
    │   └── ConnectUnavailableError  Kafka Connect did not answer (or kept rebalancing)
    └── PermanentError           poison: the same input fails the same way forever
        ├── DecodeError              bytes that are not a valid message (→ dead-letter topic)
        │   ├── WireFormatError          wrong magic byte or truncated Confluent header
        │   ├── UnknownSchemaError       the schema id is not in the registry
        │   └── AvroBodyError            the Avro body does not decode with its writer schema
        ├── TransformError           a transform rejected a well-formed change event
        └── ConnectRequestError      Kafka Connect rejected a request (bad config, unknown name)

Agents catch per event: TransientError → back off and retry the same event; PermanentError →
dead-letter with headers and move on. Nothing escapes an agent (Faust would skip the offset).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ChangefeedError(Exception):
    """Base of every error changefeed raises on purpose."""


class ConfigError(ChangefeedError):
    """Settings or definitions are invalid; the message says which and how to fix it."""


class StackError(ChangefeedError):
    """A local-stack service failed to start or stop."""


class TransientError(ChangefeedError):
    """Retrying the same operation later may succeed."""


class SinkUnavailableError(TransientError):
    """The sink database is unreachable or aborted a transaction retryably."""


class RegistryUnavailableError(TransientError):
    """The schema registry did not answer."""


class ConnectUnavailableError(TransientError):
    """Kafka Connect did not answer, or stayed in a rebalance past the deadline."""


class PermanentError(ChangefeedError):
    """The same input will fail the same way every time: dead-letter it."""


@dataclass(frozen=True)
class MessageOrigin:
    """Where a message came from, carried by decode errors into logs and dead-letter headers."""

    topic: str = ""
    partition: int = -1
    offset: int = -1

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class DecodeError(PermanentError):
    """Bytes that cannot be decoded into a message."""

    def __init__(self, message: str, origin: MessageOrigin | None = None) -> None:
        self.origin = origin or MessageOrigin()
        super().__init__(f"{message} ({self.origin})" if origin else message)


class WireFormatError(DecodeError):
    """Not Confluent wire format: wrong magic byte or a header shorter than 5 bytes."""


class UnknownSchemaError(DecodeError):
    """The schema id in the header is unknown to the registry (never retried forever)."""


class AvroBodyError(DecodeError):
    """The Avro body is truncated or otherwise does not match its writer schema."""


class TransformError(PermanentError):
    """A transform rejected a well-formed change event."""


class ConnectRequestError(PermanentError):
    """Kafka Connect answered a request with an error status."""

    def __init__(self, status: int, message: str, details: list[str] | None = None) -> None:
        self.status = status
        self.details = details or []
        text = f"Kafka Connect answered {status}: {message}"
        if self.details:
            text += "\n  " + "\n  ".join(self.details)
        super().__init__(text)


class ConnectValidationError(ConnectRequestError):
    """Kafka Connect's validate endpoint reported bad properties; ``details`` names each one."""


class ConnectNotFoundError(ConnectRequestError):
    """The connector (or plugin) named in the request does not exist on the Connect cluster."""


class ConnectorFailedError(PermanentError):
    """A connector or one of its tasks reached FAILED (or never reached RUNNING) after an apply."""

    def __init__(self, name: str, message: str, traces: list[str] | None = None) -> None:
        self.name = name
        self.traces = traces or []
        text = f"connector {name}: {message}"
        if self.traces:
            text += "\n  " + "\n  ".join(self.traces)
        super().__init__(text)


# --- change events and the sink (streams.cdc, streams.sinks) ---
#   DecodeError ── EnvelopeError          a decoded value that is not a Debezium change event
#   PermanentError ── SinkRowError        one record the sink database rejects (22xxx/23xxx)
#                     └── SinkRowErrors   all such records one flush attempt found, at once
#   SinkUnavailableError ── SinkSchemaError  sink tables don't match the mapping (42xxx): retry
#                                         after a migration, never dead-letter the events


class EnvelopeError(DecodeError):
    """A decoded message is not a well-formed Debezium change event (poison: dead-letter it)."""


class SinkRowError(PermanentError):
    """The sink database rejects one record's data; ``origin`` and ``key`` identify it."""

    def __init__(
        self, message: str, origin: MessageOrigin, key: object = None, sqlstate: str | None = None
    ) -> None:
        self.origin = origin
        self.key = key
        self.sqlstate = sqlstate
        super().__init__(f"{message} (record {origin}, key {key!r}, SQLSTATE {sqlstate})")


class SinkRowErrors(SinkRowError):
    """Every record of one flush attempt the sink rejects for a reason checked row by row.

    A ``SinkRowError`` itself (naming the first, in ``errors`` order) so a caller that handles one
    at a time still works; the worker dead-letters all of ``errors`` — each with its own text —
    and flushes once more, instead of flushing the batch again per poison record.
    """

    def __init__(self, errors: Sequence[SinkRowError]) -> None:
        if not errors:
            msg = "SinkRowErrors needs at least one SinkRowError"
            raise ValueError(msg)
        self.errors: tuple[SinkRowError, ...] = tuple(errors)
        first = self.errors[0]
        PermanentError.__init__(self, f"{len(self.errors)} record(s) rejected by the sink; first: {first}")
        self.origin, self.key, self.sqlstate = first.origin, first.key, first.sqlstate


class SinkSchemaError(SinkUnavailableError):
    """The sink's tables or columns don't match the mapping; retrying after a fix can succeed."""


class RegistryRequestError(PermanentError):
    """The schema registry refused a request; classify by ``error_code`` (40403, 409, 42201, ...)."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        self.status = status
        self.error_code = error_code
        super().__init__(f"schema registry answered {status} ({error_code}): {message}")
