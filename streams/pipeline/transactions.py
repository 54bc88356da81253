"""The transaction gate: whole source transactions out, in commit order (pure logic, no I/O).

Between the poll and ``Pipeline.process`` of an atomic source (``streams.pipeline.atomic``).
Debezium's transaction metadata (``provide.transaction.metadata=true``) gives every change record
a ``transaction.id`` and writes BEGIN and END records to ``<prefix>.transaction``; END lists, per
data collection (``schema.table`` / ``database.table``), how many change events the transaction
wrote. The gate buffers change records per transaction and releases a transaction when its END
has arrived and, for each collection this worker consumes, the records seen equal END's count
(collections not declared are neither consumed nor counted). Transactions leave strictly in END
(= commit) order; several may leave together (one sink transaction, each whole).

Offsets: a partition's records leave as a prefix of that partition (a record never leaves before
an earlier one of its partition), and a transaction-topic record only with its transaction, so
the offsets the flush stores are always at transaction boundaries — a crash re-reads whole
transactions. Records without transaction metadata (snapshot reads, tombstones, records that do
not decode) pass through, in their place in the partition.

Bounds: a transaction with more than ``max_rows`` records, or still incomplete ``max_wait_s``
after it was first seen, is *split*: applied in parts (what is buffered now, then each record as
it comes) until its END is met — never held forever, never dropped. Transactions seen before it
are split with it (they are earlier in commit order and would block it). A split transaction's
applied counts are stored in the sink with the offsets (``progress``): after a restart its
earlier records, below the stored offsets, are never re-read, and the stored counts complete it.

Transaction ids: MariaDB's are the GTID, the same on BEGIN, records and END. PostgreSQL's are
``<xid>:<lsn>`` with the LSN of BEGIN on BEGIN and the records but a later LSN on END (Debezium
3.6, seen on the stack), so PostgreSQL transactions are matched by the xid (``transaction_key``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

BEGIN, END = "BEGIN", "END"
# Ids of released transactions kept to recognise a late duplicate of one of their records (a
# redelivery): it passes through (the version guard refuses it) instead of opening a transaction.
RECENT_DONE = 10_000


def transaction_key(connector_class: str, tx_id: str) -> str:
    """What BEGIN, the records and END of one transaction share (see the module docstring)."""
    if "postgres" in connector_class.lower():
        return tx_id.partition(":")[0]
    return tx_id


@dataclass(frozen=True)
class Marker:
    """A decoded transaction-topic record."""

    status: str  # BEGIN | END
    key: str
    counts: Mapping[str, int] = field(default_factory=dict)  # END: collection → event count


@dataclass
class Tx:
    key: str
    first_seen: float
    seen: dict[str, int] = field(default_factory=dict)  # records seen this session, by collection
    prior: dict[str, int] = field(default_factory=dict)  # applied before a restart (split progress)
    released: dict[str, int] = field(default_factory=dict)  # released while split, by collection
    end: Mapping[str, int] | None = None
    end_seen: float | None = None  # when END arrived
    split: bool = False
    done: bool = False
    buffered: int = 0

    def complete(self, consumed: Iterable[str]) -> bool:
        if self.end is None:
            return False
        return all(
            self.seen.get(c, 0) + self.prior.get(c, 0) >= n for c, n in self.end.items() if c in consumed
        )

    def applied(self) -> dict[str, int]:
        """Applied counts to store for a split transaction: before the restart and since."""
        keys = set(self.prior) | set(self.released)
        return {c: self.prior.get(c, 0) + self.released.get(c, 0) for c in sorted(keys)}


@dataclass
class Split:
    key: str
    reason: str  # rows | wait
    rows: int  # records of it seen so far


@dataclass
class Release:
    """What may be applied now, in one sink transaction."""

    records: list[Any] = field(default_factory=list)  # change records, each partition in order
    marks: list[tuple[str, int, int]] = field(default_factory=list)  # transaction-topic records
    progress: dict[str, dict[str, int]] = field(default_factory=dict)  # split tx → applied counts
    finished: list[str] = field(default_factory=list)  # split transactions now complete
    transactions: int = 0  # transactions released whole or finished in this release
    splits: list[Split] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.records or self.marks)


@dataclass
class _Entry:
    record: Any
    key: str | None  # None: passes through
    collection: str | None


class Gate:
    """Buffers one source's records; ``release`` says what may be applied now.

    ``collections``: change topic → data collection (the source table id) for every topic this
    worker consumes of the source. ``tx_id(record)``: a change record's transaction id or None;
    ``marker(record)``: a transaction-topic record decoded (None: not one, it is skipped).
    """

    def __init__(
        self,
        source: str,
        collections: Mapping[str, str],
        tx_id: Callable[[Any], str | None],
        marker: Callable[[Any], Marker | None],
        key: Callable[[str], str] = lambda i: i,
        max_rows: int = 10_000,
        max_wait_s: float = 30.0,
    ) -> None:
        self.source = source
        self.collections = dict(collections)
        self.consumed = set(self.collections.values())
        self.tx_id, self.marker, self.key = tx_id, marker, key
        self.max_rows, self.max_wait_s = max_rows, max_wait_s
        self.txs: dict[str, Tx] = {}  # in order of first sight
        self.ends: deque[str] = deque()  # END order = commit order
        self.changes: dict[tuple[str, int], deque[_Entry]] = {}
        self.markers: dict[tuple[str, int], deque[tuple[Any, Marker | None]]] = {}
        self.recent: OrderedDict[str, None] = OrderedDict()

    # --- state -------------------------------------------------------------------------------
    def restore(self, progress: Mapping[str, Mapping[str, int]], now: float) -> None:
        """Split transactions the sink has part of (after a restart): they stay split."""
        for key, counts in progress.items():
            self.txs[key] = Tx(key, now, prior=dict(counts), split=True)

    @property
    def buffered_rows(self) -> int:
        return sum(len(q) for q in self.changes.values())

    @property
    def buffered_transactions(self) -> int:
        return sum(1 for t in self.txs.values() if not t.done)

    def _tx(self, key: str, now: float) -> Tx:
        tx = self.txs.get(key)
        if tx is None:
            tx = self.txs[key] = Tx(key, now)
        return tx

    # --- input -------------------------------------------------------------------------------
    def offer(self, records: Iterable[Any], now: float) -> None:
        for r in records:
            tp = (r.topic, r.partition)
            collection = self.collections.get(r.topic)
            if collection is None:  # the transaction topic
                m = self.marker(r)
                if m is not None and m.key not in self.recent:
                    tx = self._tx(m.key, now)
                    if m.status == END and tx.end is None:
                        tx.end, tx.end_seen = dict(m.counts), now
                        self.ends.append(m.key)
                else:
                    m = None  # not one, or a late duplicate: its offset goes with the next release
                self.markers.setdefault(tp, deque()).append((r, m))
                continue
            raw = self.tx_id(r)
            k = None if raw is None else self.key(raw)
            if k is not None and k in self.recent:
                k = None  # a redelivered record of a released transaction: the guard refuses it
            if k is not None:
                tx = self._tx(k, now)
                tx.seen[collection] = tx.seen.get(collection, 0) + 1
                tx.buffered += 1
            self.changes.setdefault(tp, deque()).append(_Entry(r, k, collection))

    # --- output ------------------------------------------------------------------------------
    def release(self, now: float) -> Release:
        out = Release()
        while self.ends:
            tx = self.txs[self.ends[0]]
            if not tx.complete(self.consumed) and not self._gave_up(tx, now):
                break
            self.ends.popleft()
            tx.done = True
            out.transactions += 1
            if tx.split:
                out.finished.append(tx.key)
        self._bounds(now, out)  # after: a transaction complete now is not split, however old
        for q in self.changes.values():
            while q:
                e = q[0]
                if e.key is not None:
                    tx = self.txs[e.key]
                    if not (tx.done or tx.split):
                        break
                    tx.buffered -= 1
                    if tx.split and not tx.done and e.collection is not None:
                        tx.released[e.collection] = tx.released.get(e.collection, 0) + 1
                        out.progress[tx.key] = tx.applied()
                out.records.append(q.popleft().record)
        for mq in self.markers.values():
            while mq:
                r, m = mq[0]
                if m is not None:
                    tx = self.txs[m.key]
                    if not tx.done and (m.status == END or not tx.split):
                        break
                out.marks.append((r.topic, r.partition, r.offset))
                mq.popleft()
        self._forget_done()
        return out

    def _gave_up(self, tx: Tx, now: float) -> bool:
        """A split transaction whose END came ``max_wait_s`` ago and whose counts are still not
        met (records that never reach the topic, e.g. filtered out by the connector) is finished
        anyway: its END must not hold every later transaction forever."""
        end = tx.end
        if not tx.split or end is None or tx.end_seen is None or now - tx.end_seen <= self.max_wait_s:
            return False
        seen = {c: tx.seen.get(c, 0) + tx.prior.get(c, 0) for c in end if c in self.consumed}
        log.warning(
            "source %s: transaction %s finished without all of its records: END counts %s, seen %s",
            self.source, tx.key, dict(end), seen,
        )  # fmt: skip
        return True

    def _bounds(self, now: float, out: Release) -> None:
        """Split the first transaction over a bound and every one seen before it."""
        order = [t for t in self.txs.values() if not t.done]
        trip, reason = -1, ""
        for i, tx in enumerate(order):
            if tx.split:
                continue
            if tx.buffered > self.max_rows:
                trip, reason = i, "rows"
            elif now - tx.first_seen > self.max_wait_s:
                trip, reason = i, "wait"
        for tx in order[: trip + 1]:
            if not tx.split:
                tx.split = True
                rows = sum(tx.seen.values()) + sum(tx.prior.values())
                out.splits.append(Split(tx.key, reason, rows))
                log.warning(
                    "source %s: transaction %s applied in parts (%s: %d rows so far, %s)",
                    self.source, tx.key, reason, rows,
                    f"over max_transaction_rows = {self.max_rows}" if reason == "rows"
                    else f"incomplete after max_transaction_wait_s = {self.max_wait_s:g}",
                )  # fmt: skip

    def _forget_done(self) -> None:
        for key in [k for k, t in self.txs.items() if t.done and t.buffered <= 0]:
            del self.txs[key]
            self.recent[key] = None
        while len(self.recent) > RECENT_DONE:
            self.recent.popitem(last=False)
