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


def run_bulk(settings: Settings, w: Workload, n: int, seed: int, tag: str) -> None:
    rng = random.Random(f"{seed}:{w.short}:bulk")  # noqa: S311 - benchmark data
    with customers.connect(settings.source_postgres) as pg:
        keys = [int(r[0]) for r in pg.execute("SELECT id FROM public.customers ORDER BY id")]
        pg.commit()
        hot = keys[: max(1, int(len(keys) * HOT_SHARE))]
        done, step = 0, 0
        while done < n:
            step += 1
            total = w.mix.insert + w.mix.update + w.mix.delete
            ins, upd = TX_ROWS * w.mix.insert // total, TX_ROWS * w.mix.update // total
            dele = TX_ROWS * w.mix.delete // total
            lo = step * TX_ROWS
            if ins:
                pg.execute(
                    _INSERT, (f"{tag}{w.short}", w.large_every, w.large_every or 1, BIG, lo, lo + ins - 1)
                )
            if upd and keys:
                picks = {
                    rng.choice(hot) if w.hot and rng.random() < HOT_FRACTION else rng.choice(keys)
                    for _ in range(upd)
                }
                pg.execute(_UPDATE, (step, str(step), list(picks)))
            if dele and len(keys) > dele:
                gone = set(rng.sample(keys, dele))
                pg.execute("DELETE FROM public.customers WHERE id = ANY(%s)", (list(gone),))
                keys = [k for k in keys if k not in gone]
            pg.commit()
            done += ins + upd + dele


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
