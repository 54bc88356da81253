"""Builders for change events shared by the sink unit tests (a uniquely named module)."""

from __future__ import annotations

import json
from typing import Any

from streams.cdc import ChangeEvent, parse_change_event


def pg_event(
    op: str,
    row: dict[str, Any] | None,
    lsn: int,
    *,
    offset: int = 0,
    partition: int = 0,
    topic: str = "cf.public.customers",
    table: str = "customers",
) -> ChangeEvent:
    before = row if op == "d" else None
    after = None if op == "d" else row
    source = {
        "connector": "postgresql",
        "schema": "public",
        "table": table,
        "sequence": json.dumps([str(lsn - 1), str(lsn)]),
        "txId": 1,
        "ts_ms": 1_700_000_000_000,
    }
    value = {"op": op, "before": before, "after": after, "source": source, "ts_ms": 1_700_000_000_000}
    return parse_change_event(value, topic=topic, partition=partition, offset=offset)
