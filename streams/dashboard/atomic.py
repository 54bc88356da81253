"""Atomic sources in the health views (pure): read from the workers' metrics, judged over time.

One worker owns each atomic source (a sink advisory lock); the others are standbys retrying
every few seconds. Whether a source stalls cannot be seen in one scrape: a handover leaves it
unowned for a moment, and a buffered transaction is normal until its END arrives. So a
``Watch`` remembers since when each source has been unowned, and since when its buffered
transactions have seen no release, and judges:

- STALLED: no worker (or more than one) reports ``changefeed_atomic_source_owned`` = 1 for longer
  than ``grace_s`` (well above a standby's retry), or transactions stay buffered with no release
  for longer than the source's ``max_transaction_wait_s`` plus ``margin_s`` (the gate splits an
  incomplete transaction at that deadline, so a live owner always releases something by then).
- WARN: transactions were applied in parts (``changefeed_transactions_split_total`` grew within
  ``split_window_s``): readers could see half of them.

The Prometheus rules AtomicSourceUnowned, AtomicTransactionsStuck and AtomicTransactionsSplit
(``compose/prometheus/alerts.yml``) state the same conditions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

OK, WARN, STALLED = "OK", "WARN", "STALLED"


@dataclass(frozen=True)
class AtomicLimits:
    grace_s: float = 30.0  # unowned this long is a stall (a standby retries every 3 s)
    margin_s: float = 30.0  # beyond max_transaction_wait_s before buffered-without-release stalls
    split_window_s: float = 600.0  # a split this recent is a warning


@dataclass
class Reading:
    """One source's metrics summed over the workers scraped at one moment."""

    owners: int = 0  # workers reporting owned = 1
    buffered: int = 0  # transactions the owner's gate holds
    buffered_rows: int = 0
    released: float = 0.0  # transactions released, since the workers started
    splits: dict[str, float] = field(default_factory=dict)  # reason -> count since the workers started


def readings(text: str, into: dict[str, Reading] | None = None) -> dict[str, Reading]:
    """Add one worker's scrape (exposition text) to ``into``, per source label."""
    out = {} if into is None else into
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            source = s.labels.get("source")
            if source is None:
                continue
            r = out.setdefault(source, Reading())
            if s.name == "changefeed_atomic_source_owned":
                r.owners += int(s.value >= 1)
            elif s.name == "changefeed_transactions_buffered":
                r.buffered += int(s.value)
            elif s.name == "changefeed_transaction_rows_buffered":
                r.buffered_rows += int(s.value)
            elif s.name == "changefeed_transactions_released_total":
                r.released += s.value
            elif s.name == "changefeed_transactions_split_total":
                reason = s.labels.get("reason", "")
                r.splits[reason] = r.splits.get(reason, 0.0) + s.value
    return out


@dataclass(frozen=True)
class AtomicRow:
    """What the page shows and ``health`` judges, per declared atomic source."""

    source: str
    state: str  # OK | WARN | STALLED
    owners: int
    buffered: int
    buffered_rows: int
    released: float
    splits: int
    reason: str = ""  # why not OK, and what to do next


@dataclass
class _Since:
    unowned: float | None = None  # when owners != 1 was first seen
    progress: float = 0.0  # last time nothing was buffered or the released count moved
    released: float = -1.0
    splits: float = 0.0
    split_at: float | None = None  # when the split count last grew
    looks: int = 0


class Watch:
    """Remembers, per source, what one scrape cannot tell: since when it is stuck."""

    def __init__(self, limits: AtomicLimits | None = None) -> None:
        self.limits = limits or AtomicLimits()
        self.seen: dict[str, _Since] = {}
        self.now = 0.0  # the last judge's time

    def judge(
        self, now: float, declared: Mapping[str, float], scraped: Mapping[str, Reading]
    ) -> list[AtomicRow]:
        """``declared``: each atomic source's ``max_transaction_wait_s``."""
        self.now = now
        return [
            self._one(now, name, wait_s, scraped.get(name, Reading())) for name, wait_s in declared.items()
        ]

    def _one(self, now: float, name: str, wait_s: float, r: Reading) -> AtomicRow:
        lim = self.limits
        first = name not in self.seen
        s = self.seen.setdefault(name, _Since(progress=now))
        s.looks += 1
        s.unowned = None if r.owners == 1 else (now if s.unowned is None else s.unowned)
        if r.buffered == 0 or r.released != s.released:  # a worker restart resets it: a change too
            s.progress = now
        s.released = r.released
        splits = sum(r.splits.values())
        if splits > s.splits or (first and splits):
            s.split_at = now  # at the first look: some time since the workers started
        s.splits = splits
        state, reason = OK, ""
        stuck_after = wait_s + lim.margin_s
        if s.unowned is not None and now - s.unowned > lim.grace_s:
            state = STALLED
            who = "no worker owns it" if r.owners == 0 else f"{r.owners} workers report owning it"
            reason = (
                f"{who} for {now - s.unowned:.0f} s (grace {lim.grace_s:g} s); start `changefeed worker`"
                " (a standby takes over within seconds), or check the workers' logs for the sink lock"
            )
        elif r.buffered and now - s.progress > stuck_after:
            state = STALLED
            reason = (
                f"{r.buffered} transactions ({r.buffered_rows} rows) buffered, none released for"
                f" {now - s.progress:.0f} s (limit max_transaction_wait_s {wait_s:g} s + {lim.margin_s:g} s);"
                " check the owner's log (sink flush failing?); restarting it hands the source to a standby"
            )
        elif s.split_at is not None and now - s.split_at <= lim.split_window_s:
            state = WARN
            by = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r.splits.items()) if v)
            reason = (
                f"{splits:.0f} transactions applied in parts ({by}): readers may have seen half of them;"
                " raise max_transaction_rows / max_transaction_wait_s, or look for a capture gap"
                " (the owner's log names each)"
            )
        return AtomicRow(name, state, r.owners, r.buffered, r.buffered_rows, r.released, int(splits), reason)


def pending(watch: Watch, rows: Iterable[AtomicRow]) -> bool:
    """A source not STALLED yet that looks stuck right now: unowned, or buffered transactions
    and no release since the previous look (another look decides)."""
    for r in rows:
        s = watch.seen.get(r.source)
        if r.state == STALLED or s is None:
            continue
        if s.unowned is not None or (r.buffered and (s.looks == 1 or s.progress < watch.now)):
            return True
    return False


def stalled(rows: Iterable[AtomicRow]) -> list[str]:
    return [f"atomic source {r.source}: STALLED, {r.reason}" for r in rows if r.state == STALLED]


def warnings(rows: Iterable[AtomicRow]) -> list[str]:
    return [f"atomic source {r.source}: {r.reason}" for r in rows if r.state == WARN]
