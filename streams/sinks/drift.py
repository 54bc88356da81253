"""Mapped columns an event's writer schema does not carry: kept, and said so loudly.

A column dropped (or renamed) at the source vanishes from the Avro writer schema of the table's
change events. ``batch.to_write`` then keeps the stored value (a missing field is not a NULL);
this module makes that visible: a warning once per (table, column, writer schema), a count per
event for the ``changefeed_source_column_missing`` metric, and a ``column_missing`` notice for the
ledger (``streams.sinks.notices``), once per sink table and column per worker.

The check runs once per writer schema (the decoder hands out one field map per schema id for its
lifetime, so its identity is a stable cache key); without a field map (a caller that decodes no
Avro) the row's own field names stand in for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from streams.cdc import ChangeEvent, Op
from streams.sinks.mapping import TableMapping
from streams.sinks.notices import COLUMN_MISSING, Notice

log = logging.getLogger(__name__)


class MissingColumns:
    def __init__(self) -> None:
        self._by_schema: dict[tuple[TableMapping, Any], tuple[str, ...]] = {}
        self._noticed: set[tuple[str, str]] = set()  # (sink table, source column): ledgered once
        self._last_mapping: TableMapping | None = None
        self._last_fields: Mapping[str, Any] | None = None
        self._last: tuple[str, ...] = ()

    def check(
        self, mapping: TableMapping, event: ChangeEvent, fields: Mapping[str, Any] | None
    ) -> tuple[str, ...]:
        """Source names of the mapped value columns this event's writer schema lacks."""
        if event.op is Op.DELETE or event.op is Op.TRUNCATE:
            return ()  # a delete writes no values; its before image may be the key alone
        if fields is not None and fields is self._last_fields and mapping is self._last_mapping:
            return self._last  # the hot path: the same table and writer schema as the event before
        if fields is not None:
            slot: Any = id(fields)
            present: Any = fields
        else:
            present = frozenset(event.row or ())
            slot = present
        cached = self._by_schema.get((mapping, slot))
        if cached is None:
            cached = tuple(c.source for c in mapping.value_columns if c.source not in present)
            self._by_schema[(mapping, slot)] = cached
            for source in cached:
                col = next(c for c in mapping.value_columns if c.source == source)
                log.warning(
                    "%s: the writer schema of %s[%d]@%d has no field %r; sink column %s.%s.%s keeps"
                    " its stored values (dropped or renamed at the source? see README: Troubleshooting)",
                    mapping.source_table,
                    event.topic,
                    event.partition,
                    event.offset,
                    source,
                    mapping.sink_schema,
                    mapping.sink_table,
                    col.name,
                )
        if fields is not None:
            self._last_mapping, self._last_fields, self._last = mapping, fields, cached
        return cached

    def notices(self, mapping: TableMapping, event: ChangeEvent, missing: tuple[str, ...]) -> list[Notice]:
        """Ledger entries for columns not ledgered yet by this worker (the ledger de-duplicates too)."""
        out = []
        sink_table = f"{mapping.sink_schema}.{mapping.sink_table}"
        for source in missing:
            if (sink_table, source) in self._noticed:
                continue
            self._noticed.add((sink_table, source))
            assert event.position is not None  # deletes and tombstones never get here
            out.append(
                Notice(
                    sink_table=sink_table,
                    source_table=mapping.source_table,
                    kind=COLUMN_MISSING,
                    position=event.position.to_bytes(),
                    topic=event.topic,
                    partition=event.partition,
                    offset=event.offset,
                    source_column=source,
                    detail="mapped column absent from the writer schema; stored values kept",
                )
            )
        return out
