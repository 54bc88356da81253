"""``changefeed health``'s checks over one snapshot (pure): one line per failing check.

The same thresholds as the Prometheus alert rules in ``compose/prometheus/alerts.yml``, so a
script's probe and a page agree on what is wrong. Atomic sources are judged over time by
``streams.dashboard.atomic.Watch`` (``snap.atomic``); a STALLED one fails here, a WARN does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.connect.health import human_bytes
from streams.dashboard.atomic import stalled
from streams.dashboard.collect import Snapshot


@dataclass(frozen=True)
class Limits:
    max_lag_s: float = 60.0
    max_slot_bytes: int = 1024**3
    min_workers: int = 1


def failing(snap: Snapshot, limits: Limits) -> list[str]:
    out = [f"unreadable: {e}" for e in snap.errors]
    # Connectors are judged below, and only the project's: a shared Connect cluster runs other
    # teams' connectors, whose failures are theirs. Sources, slots and binlogs stay (shared disk).
    out += [f"capture: {p}" for p in snap.problems if not p.startswith("connector ")]
    mine = set(snap.project_connectors)
    for c in snap.connectors:
        if mine and c.name not in mine:
            continue
        if c.state == "FAILED":
            out.append(f"connector {c.name}: FAILED — {c.failure}")
        elif c.state != "RUNNING" or any(s != "RUNNING" for _, s in c.tasks):
            tasks = ", ".join(f"{i}={s}" for i, s in c.tasks) or "no tasks"
            out.append(f"connector {c.name}: {c.state} ({tasks}), nothing is captured")
    missing = sorted(mine - {c.name for c in snap.connectors})
    if missing and not any(e.startswith("capture") for e in snap.errors):
        out += [
            f"connector {name}: not on the Connect cluster (changefeed connectors apply)" for name in missing
        ]
    for t in snap.tables:
        if t.lag_seconds > limits.max_lag_s:
            age = f"oldest {t.lag_seconds:.0f} s old (limit {limits.max_lag_s:g} s)"
            out.append(f"lag {t.table}: {t.lag_events} events, {age}")
    for s in snap.sources:
        if s.kind == "slot" and s.retained_bytes is not None and s.retained_bytes > limits.max_slot_bytes:
            limit = human_bytes(limits.max_slot_bytes)
            out.append(f"{s.name}: retains {human_bytes(s.retained_bytes)} of WAL (limit {limit})")
    if not any("worker group" in e for e in snap.errors) and len(snap.workers) < limits.min_workers:
        out.append(f"workers: {len(snap.workers)} in group {snap.group} (need {limits.min_workers})")
    out += stalled(snap.atomic)
    return out
