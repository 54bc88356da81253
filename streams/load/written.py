"""What one load transaction wrote, and the run's tally of it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from streams.load.mix import WriteOp


@dataclass(frozen=True)
class Written:
    """One committed source transaction.

    ``stamped_at`` is the source's own clock inside the transaction (the value written to
    ``updated_at``), ``committed_at`` the client's clock right after COMMIT returned: the true
    commit time lies between them.
    """

    source: str  # "customers" | "orders"
    op: WriteOp
    key: int
    stamped_at: datetime
    committed_at: datetime
    rows: Counter[str] = field(default_factory=Counter)  # table -> rows changed
    outbox: int = 0  # outbox rows written in the same transaction
    token: str | None = None  # the consistency token, when the writer was asked for tokens


@dataclass
class LoadTally:
    transactions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, op) -> n
    rows: Counter[str] = field(default_factory=Counter)  # table -> rows changed
    outbox: int = 0

    def add(self, w: Written) -> None:
        self.transactions[(w.source, w.op.value)] += 1
        self.rows.update(w.rows)
        self.outbox += w.outbox

    @property
    def total(self) -> int:
        return sum(self.transactions.values())
