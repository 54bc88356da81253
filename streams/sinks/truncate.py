"""A source TRUNCATE applied to its sink table, guarded by position, in the flush transaction.

Debezium emits one ``op = "t"`` event per truncated table (no key, no row images) once the
connector's ``skipped.operations`` no longer lists ``t``. The table's ``truncate`` policy decides:

- ``apply`` (default): every sink row whose stored position is older than the truncate's goes the
  way a delete would under the table's delete policy — hard: removed, its key kept as a tombstone
  at the truncate's position (a late, older upsert of that key cannot resurrect it); soft:
  ``_cf_deleted_at`` set and the position moved to the truncate's. Rows written by changes after
  the truncate (a newer position, even in the same batch) stay. Tables that look the truncated
  one up get their copied columns refreshed for the removed keys. A ``truncate_applied`` notice
  records the number of rows.
- ``ignore``: nothing is removed; a warning, the ``changefeed_truncates{action="ignored"}`` metric
  and a ``truncate_ignored`` notice say so.

Writes run before truncates in a flush, so a batch holding both an older insert and the truncate
ends as the source did. The guard is per row: a truncate arriving on one partition of a
multi-partition topic does not hold back older changes of other partitions flushed after it
(Debezium's change topics here have one partition; see README *Troubleshooting*).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from psycopg import sql

from streams.cdc import ChangeEvent
from streams.sinks.ddl import DELETED_AT, POSITION, ident
from streams.sinks.mapping import DeletePolicy, TableMapping
from streams.sinks.notices import TRUNCATE_APPLIED, TRUNCATE_IGNORED, Notice


@dataclass(frozen=True)
class Truncate:
    mapping: TableMapping
    event: ChangeEvent
    position: bytes
    at: datetime | None  # the source commit time: ``_cf_deleted_at`` of what it removes

    @classmethod
    def of(cls, mapping: TableMapping, event: ChangeEvent) -> Truncate:
        assert event.position is not None, "a truncate event carries its source position"
        return cls(mapping, event, event.position.to_bytes(), event.source_ts or event.ts)

    def notice(self, applied: bool, rows: int | None = None) -> Notice:
        m = self.mapping
        return Notice(
            sink_table=f"{m.sink_schema}.{m.sink_table}",
            source_table=m.source_table,
            kind=TRUNCATE_APPLIED if applied else TRUNCATE_IGNORED,
            position=self.position,
            topic=self.event.topic,
            partition=self.event.partition,
            offset=self.event.offset,
            rows=rows,
            detail="" if applied else 'truncate = "ignore": sink rows kept',
        )


@cache
def truncate_sql(m: TableMapping) -> sql.Composed:
    """Params: position, deleted_at (soft) or position, position, deleted_at (hard).
    Returns the keys it removed (or soft-deleted)."""
    table, pos, deleted = ident(m.sink_schema, m.sink_table), ident(POSITION), ident(DELETED_AT)
    keys = sql.SQL(", ").join(ident(k) for k in m.key)
    if m.delete_policy is DeletePolicy.SOFT:
        return sql.SQL(
            "UPDATE {t} SET {d} = %s, {p} = %s WHERE {p} < %s AND {d} IS NULL RETURNING {k}"
        ).format(t=table, d=deleted, p=pos, k=keys)
    return sql.SQL(
        "WITH gone AS (DELETE FROM {t} WHERE {p} < %s RETURNING {k}),"
        " tomb AS (INSERT INTO {tomb} AS x ({k}, {p}, {d}) SELECT {k}, %s, %s FROM gone"
        " ON CONFLICT ({k}) DO UPDATE SET {p} = EXCLUDED.{p}, {d} = EXCLUDED.{d} WHERE x.{p} < EXCLUDED.{p})"
        " SELECT {k} FROM gone"
    ).format(t=table, tomb=ident(m.sink_schema, m.tombstone_table), p=pos, d=deleted, k=keys)


def truncate_params(t: Truncate) -> list[Any]:
    if t.mapping.delete_policy is DeletePolicy.SOFT:
        return [t.at, t.position, t.position]
    return [t.position, t.position, t.at]
