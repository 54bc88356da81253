"""The three workloads, all from streams.load's seeded generator (one transaction per operation)."""

from __future__ import annotations

from dataclasses import dataclass

from streams.load import LoadPlan
from streams.load.mix import Mix

HOT_SHARE = 0.10  # 10% of the keys ...
HOT_FRACTION = 0.90  # ... take 90% of the updates (and deletes)


@dataclass(frozen=True)
class Workload:
    name: str
    short: str  # used in topic / schema names
    mix: Mix
    hot: bool
    large_every: int  # about one row in N gets a 16 KiB TOASTed text value (0: never)


WORKLOADS = (
    Workload("insert-heavy", "ins", Mix(95, 5, 0), hot=False, large_every=0),
    Workload("update-heavy-hot", "upd", Mix(5, 95, 0), hot=True, large_every=0),
    Workload("mixed-deletes-large", "mix", Mix(45, 35, 20), hot=False, large_every=4),
)


def plan(w: Workload, rate: float, duration_s: float, seed: int, live_keys: int) -> LoadPlan:
    hot = max(1, int(live_keys * HOT_SHARE)) if w.hot else 0
    return LoadPlan(
        rate=rate,
        duration_s=duration_s,
        mix=w.mix,
        seed=seed,
        hot_keys=hot,
        hot_fraction=HOT_FRACTION,
        large_every=w.large_every,
    )
