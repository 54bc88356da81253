"""The keys a load run may update or delete, with an optional hot set.

Selection must be deterministic for a seed: keys are kept in insertion order and picked by
index, never by iterating a set. Removal swaps with the last element so it stays O(1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class KeyPool:
    hot_keys: int = 0  # the first N live keys take ``hot_fraction`` of all picks
    hot_fraction: float = 0.8
    _keys: list[int] = field(default_factory=list)
    _index: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: int) -> None:
        if key not in self._index:
            self._index[key] = len(self._keys)
            self._keys.append(key)

    def remove(self, key: int) -> None:
        i = self._index.pop(key)
        last = self._keys.pop()
        if i < len(self._keys):
            self._keys[i] = last
            self._index[last] = i

    def pick(self, rng: random.Random) -> int:
        if not self._keys:
            msg = "no live keys to pick from"
            raise LookupError(msg)
        hot = min(self.hot_keys, len(self._keys))
        if hot and rng.random() < self.hot_fraction:
            return self._keys[rng.randrange(hot)]
        return self._keys[rng.randrange(len(self._keys))]
