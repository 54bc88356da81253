"""The insert:update:delete mix, parsed once and sampled with the run's seeded generator."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass


class WriteOp(enum.StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Mix:
    insert: int
    update: int
    delete: int

    @classmethod
    def parse(cls, text: str) -> Mix:
        """``"70:25:5"`` → weights; each a non-negative integer, inserts must be possible."""
        parts = text.split(":")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            msg = f"mix must look like insert:update:delete with integer weights, got {text!r}"
            raise ValueError(msg)
        mix = cls(*(int(p) for p in parts))
        if mix.insert <= 0:
            msg = f"mix {text!r} needs a positive insert weight (updates and deletes need rows)"
            raise ValueError(msg)
        return mix

    def choose(self, rng: random.Random) -> WriteOp:
        roll = rng.randrange(self.insert + self.update + self.delete)
        if roll < self.insert:
            return WriteOp.INSERT
        if roll < self.insert + self.update:
            return WriteOp.UPDATE
        return WriteOp.DELETE

    def __str__(self) -> str:
        return f"{self.insert}:{self.update}:{self.delete}"
