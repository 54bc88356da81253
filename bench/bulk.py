"""Set-based, seeded versions of the three workloads on the customers source (PostgreSQL).

The per-transaction load generator tops out near 100 tx/s on this box (one fsync'd commit per
operation), far below what the sinks can take, so the replay data sets are topped up with these:
the same shapes (inserts; updates where 10% of keys take 90%; inserts/updates/deletes with 16 KiB
TOASTed text), many rows per transaction, drawn from ``random.Random(seed)``.
"""

from __future__ import annotations

import random

from bench.workloads import HOT_FRACTION, HOT_SHARE, Workload
from streams.load import customers
from streams.settings import Settings

TX_ROWS = 200
BIG = "x" * (16 * 1024)
_INSERT = (
    "INSERT INTO public.customers (email, first_name, last_name, tier, bio, created_at, updated_at)"
    " SELECT 'b-' || %s::text || '-' || g || '@example.com', 'Bulk', 'Row ' || g, 'standard',"
    " CASE WHEN %s::int > 0 AND g %% %s::int = 0 THEN %s::text ELSE 'short' END,"
    " clock_timestamp(), clock_timestamp()"
    " FROM generate_series(%s::int, %s::int) AS g"
)
_UPDATE = (
    "UPDATE public.customers"
    " SET tier = (ARRAY['standard','silver','gold','platinum'])[1 + (id + %s::int) %% 4],"
    " phone = '+41 ' || %s::text, updated_at = clock_timestamp() WHERE id = ANY(%s::bigint[])"
)


class BulkSource:
    """One workload's set-based transactions on the customers source, committed one at a time.

    ``run_bulk`` drives it flat out; ``bench.stepped`` paces it to a fixed rate of row changes.
    """

    def __init__(
        self,
        settings: Settings,
        w: Workload,
        seed: int,
        tag: str,
        purpose: str = "bulk",
        tx_rows: int = TX_ROWS,
    ) -> None:
        self.w, self.tag, self.tx_rows = w, tag, tx_rows  # tag: unique per run (inserted emails)
        self.rng = random.Random(f"{seed}:{w.short}:{purpose}")  # noqa: S311 - benchmark data
        self.pg = customers.connect(settings.source_postgres)
        self.keys = [int(r[0]) for r in self.pg.execute("SELECT id FROM public.customers ORDER BY id")]
        self.pg.commit()
        self.hot = self.keys[: max(1, int(len(self.keys) * HOT_SHARE))]
        self.step = 0

    def tx(self) -> int:
        """Commit one transaction of about ``tx_rows`` changes in the workload's mix; their number."""
        w, rng = self.w, self.rng
        self.step += 1
        total = w.mix.insert + w.mix.update + w.mix.delete
        ins, upd = self.tx_rows * w.mix.insert // total, self.tx_rows * w.mix.update // total
        dele = self.tx_rows * w.mix.delete // total
        lo, changed = self.step * self.tx_rows, 0
        if ins:
            self.pg.execute(
                _INSERT, (f"{self.tag}{w.short}", w.large_every, w.large_every or 1, BIG, lo, lo + ins - 1)
            )
            changed += ins
        if upd and self.keys:
            picks = {
                rng.choice(self.hot) if w.hot and rng.random() < HOT_FRACTION else rng.choice(self.keys)
                for _ in range(upd)
            }
            self.pg.execute(_UPDATE, (self.step, str(self.step), list(picks)))
            changed += len(picks)
        if dele and len(self.keys) > dele:
            gone = set(rng.sample(self.keys, dele))
            self.pg.execute("DELETE FROM public.customers WHERE id = ANY(%s)", (list(gone),))
            self.keys = [k for k in self.keys if k not in gone]
            self.hot = [k for k in self.hot if k not in gone] or self.keys[:1]
            changed += dele
        self.pg.commit()
        return changed

    def close(self) -> None:
        self.pg.close()


TOP_UP_TX_ROWS = 1000  # the replay top-up only needs the rows, fast: fewer, larger transactions


def run_bulk(settings: Settings, w: Workload, n: int, seed: int, tag: str) -> None:
    source = BulkSource(settings, w, seed, tag, tx_rows=TOP_UP_TX_ROWS)
    try:
        done = 0
        while done < n:
            done += source.tx()
    finally:
        source.close()


def settled_end(bootstrap: str, topic: str, quiet_s: float = 3.0) -> int:
    """Partition 0's end offset once Debezium has stopped adding to it for ``quiet_s``."""
    import time

    from streams.demo.offsets import end_offsets

    last, since = -1, time.monotonic()
    while True:
        now = end_offsets(bootstrap).get((topic, 0), 0)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
        time.sleep(0.5)
