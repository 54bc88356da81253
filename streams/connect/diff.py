"""Per-property difference between a live connector config and the desired one.

Connect stores every value as a string and adds ``name`` to the stored config, so both sides are
compared as strings with ``name`` set; placeholders (``${file:...}``) compare literally, which is
exactly what Connect stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class Change(Enum):
    ADDED = "+"
    REMOVED = "-"
    CHANGED = "~"


@dataclass(frozen=True)
class PropertyChange:
    key: str
    change: Change
    old: str | None
    new: str | None

    def __str__(self) -> str:
        if self.change is Change.ADDED:
            return f"+ {self.key} = {self.new}"
        if self.change is Change.REMOVED:
            return f"- {self.key} (was {self.old})"
        return f"~ {self.key}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class ConfigDiff:
    """What a PUT of the desired config would change; ``create`` when nothing is live."""

    name: str
    create: bool
    changes: tuple[PropertyChange, ...]

    @property
    def empty(self) -> bool:
        return not self.create and not self.changes


def normalized(name: str, config: Mapping[str, object]) -> dict[str, str]:
    """The config as Connect stores it: string values and the connector's name."""
    out = {key: _text(value) for key, value in config.items()}
    out["name"] = name
    return out


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def diff_config(name: str, live: Mapping[str, str] | None, desired: Mapping[str, object]) -> ConfigDiff:
    """Compare property by property, sorted by key so the output is stable."""
    want = normalized(name, desired)
    if live is None:
        added = tuple(PropertyChange(k, Change.ADDED, None, want[k]) for k in sorted(want))
        return ConfigDiff(name, create=True, changes=added)
    have = normalized(name, live)
    changes: list[PropertyChange] = []
    for key in sorted(have.keys() | want.keys()):
        old, new = have.get(key), want.get(key)
        if old == new:
            continue
        if old is None:
            changes.append(PropertyChange(key, Change.ADDED, None, new))
        elif new is None:
            changes.append(PropertyChange(key, Change.REMOVED, old, None))
        else:
            changes.append(PropertyChange(key, Change.CHANGED, old, new))
    return ConfigDiff(name, create=False, changes=tuple(changes))
