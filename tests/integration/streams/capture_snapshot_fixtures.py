"""Re-capture tests/unit/cdc/fixtures/*_resnapshot.json from the running stack (not a test).

    .venv/bin/python -m tests.integration.streams.capture_snapshot_fixtures postgres|mariadb

(with ``CHANGEFEED_STACK__*`` pointing at the stack, as for the integration tests).

Steps (one scratch connector and table, removed afterwards): initial snapshot of 3 rows; one
streamed update; offsets reset while a transaction updating id 2 is open; resume (re-snapshot);
that transaction commits after the snapshot point; two more transactions; an incremental snapshot.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from streams.settings import load_settings
from tests.integration.streams.scratch import Scratch, Source, wait_snapshot_done

FIXTURES = Path(__file__).resolve().parents[2] / "unit" / "cdc" / "fixtures"
STEPS = (
    "initial snapshot of 3 rows; UPDATE id=1; offsets reset while a transaction updating id=2 was open;"
    " resume (re-snapshot); that transaction committed after the snapshot; two more transactions;"
    " an incremental snapshot"
)


def capture(source: Source) -> dict[str, list[dict[str, Any]]]:
    sc, out = Scratch(load_settings(), source), {}
    try:
        sc.create_tables(3)
        sc.start()
        out["snapshot"] = sc.read(0, wait_snapshot_done)
        sc.sql("UPDATE {t} SET tier = 'silver', n = 1 WHERE id = 1")
        n = len(out["snapshot"])
        out["streamed_before_reset"] = sc.read(n, lambda vs: len(vs) >= 1)
        n += len(out["streamed_before_reset"])
        sc.reset_offsets()
        with sc.open_transaction() as run:
            run("UPDATE {t} SET tier = 'straddle', n = 2 WHERE id = 2")
            sc.resume()
            out["resnapshot"] = sc.read(n, wait_snapshot_done)
            n += len(out["resnapshot"])
        sc.sql("UPDATE {t} SET tier = 'gold', n = 3 WHERE id = 3")
        sc.sql("UPDATE {t} SET tier = 'gold', n = 4 WHERE id = 2")
        out["streamed_after_resnapshot"] = sc.read(n, lambda vs: len(vs) >= 3)
        n += len(out["streamed_after_resnapshot"])
        sc.incremental_snapshot()
        out["incremental"] = sc.read(
            n, lambda vs: sum(v["source"].get("snapshot") == "incremental" for v in vs) >= 3
        )
    finally:
        sc.close()
    for values in out.values():
        for v in values:
            v["kafka_offset"] = v.pop("__offset")
    return out


if __name__ == "__main__":
    which: Source = "mariadb" if sys.argv[1:] == ["mariadb"] else "postgres"
    connector = "connectors/customers.json" if which == "postgres" else "connectors/orders.json (no outbox)"
    captured = f"{Path(__file__).name}, config of {connector} with scratch names: {STEPS}"
    data = {"captured": captured, **capture(which)}
    path = FIXTURES / f"{which}_resnapshot.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
    print(path)
