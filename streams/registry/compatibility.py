"""Compatibility levels over the Avro specification's schema-resolution rules.

BACKWARD means the new schema can read data written with the old one (new = reader); FORWARD the
reverse; FULL both. The *_TRANSITIVE levels check every live version, the others only the latest.
The pairwise rules come from ``avro.compatibility`` so we follow the spec rather than re-derive it.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import Schema


class CompatibilityLevel(StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def transitive(self) -> bool:
        return self.endswith("_TRANSITIVE")

    @property
    def backward(self) -> bool:
        return self.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        return self.startswith(("FORWARD", "FULL"))


DEFAULT_LEVEL = CompatibilityLevel.BACKWARD


def reader_writer_problems(reader: Schema, writer: Schema) -> list[str]:
    """Why ``reader`` cannot decode data written with ``writer`` (empty if it can)."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro's __init__ is unannotated
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted(k.value for k in result.incompatibilities))
    where = ", ".join(sorted(result.locations))
    what = ", ".join(sorted(str(m) for m in result.messages))
    return [f"{kinds} at {where}: {what}"]


def check(level: CompatibilityLevel, new: Schema, previous: Sequence[tuple[int, Schema]]) -> list[str]:
    """Reasons ``new`` violates ``level`` against ``previous`` (version, schema), oldest first."""
    if level is CompatibilityLevel.NONE or not previous:
        return []
    targets = previous if level.transitive else previous[-1:]
    reasons: list[str] = []
    for version, old in reversed(targets):
        label = f"version {version}"
        if level.backward:
            reasons += [
                f"BACKWARD vs {label}: new schema cannot read old data: {p}"
                for p in reader_writer_problems(new, old)
            ]
        if level.forward:
            reasons += [
                f"FORWARD vs {label}: old schema cannot read new data: {p}"
                for p in reader_writer_problems(old, new)
            ]
    return reasons
