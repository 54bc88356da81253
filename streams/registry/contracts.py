"""The repository's Avro contracts: ``schemas/index.json`` maps subject ↔ file ↔ level.

References in the index name a subject, not a version: the version is whatever that subject's
latest is when the contract is registered or checked (the index lists shared types first).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streams.errors import ConfigError
from streams.registry.compatibility import CompatibilityLevel
from streams.registry.schema import Reference, SchemaSource

INDEX = "index.json"


@dataclass(frozen=True)
class Contract:
    subject: str
    path: Path
    level: CompatibilityLevel
    references: tuple[tuple[str, str], ...]  # (type name, subject)

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def source(self, version_of: Callable[[str], int]) -> SchemaSource:
        """The schema with each reference pinned to ``version_of(subject)``."""
        refs = tuple(Reference(name, subject, version_of(subject)) for name, subject in self.references)
        return SchemaSource(self.text, refs)


def load_index(root: Path) -> list[Contract]:
    """Every contract in index order; ``ConfigError`` naming the entry if the index is wrong."""
    index_path = root / INDEX
    try:
        entries = json.loads(index_path.read_text(encoding="utf-8"))["subjects"]
        contracts = [
            Contract(
                subject=entry["subject"],
                path=root / entry["file"],
                level=CompatibilityLevel(entry.get("compatibility", "BACKWARD")),
                references=tuple((r["name"], r["subject"]) for r in entry.get("references", ())),
            )
            for entry in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{index_path}: {exc!r}"
        raise ConfigError(msg) from exc
    for contract in contracts:
        if not contract.path.is_file():
            msg = f"{index_path}: {contract.subject} points to missing file {contract.path}"
            raise ConfigError(msg)
    return contracts


def local_resolver(contracts: list[Contract]) -> Callable[[Reference], SchemaSource]:
    """Resolve references from the local files (for validating contracts without a registry)."""
    by_subject = {c.subject: c for c in contracts}

    def resolve(ref: Reference) -> SchemaSource:
        target = by_subject[ref.subject]
        return target.source(lambda _: 1)

    return resolve
