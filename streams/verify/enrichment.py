"""Sink-side oracle for the ``order_view`` enrichment: each order's customer name and email
must equal ``customer_directory``'s row of that order's customer (NULL when there is none).

The enrichment is not in any source table, so the checksum comparison leaves it out (a
"derived" column); this check closes that gap inside the sink, in one statement per round.
"Name" is the directory's first and last name joined by one space, as the shipping service
defines it.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from streams.sinks.mapping import TableMapping
from streams.verify.compare import Divergence, DivergentKey, TableResult

ORDERS, CUSTOMERS = "order_view", "customer_directory"
CHECK_NAME = "order_view ⋈ customer_directory"


def enrichment_sql(schema: str) -> sql.Composed:
    """Params: limit. Rows: (order count, mismatches, [order_id, customer_id, name, email,
    expected name, expected email] for up to ``limit`` mismatching orders, as JSON)."""
    return sql.SQL(
        "WITH x AS (SELECT o.order_id, o.customer_id, o.customer_name AS name, o.customer_email AS email,"
        " CASE WHEN c.customer_id IS NOT NULL THEN concat_ws(' ', c.first_name, c.last_name) END"
        " AS want_name,"
        " c.email AS want_email FROM {ov} o LEFT JOIN {cd} c ON c.customer_id = o.customer_id"
        " WHERE o.{deleted} IS NULL),"
        " bad AS (SELECT * FROM x WHERE name IS DISTINCT FROM want_name OR email IS DISTINCT FROM want_email)"
        " SELECT (SELECT count(*) FROM x), (SELECT count(*) FROM bad),"
        " (SELECT coalesce(jsonb_agg(to_jsonb(b) ORDER BY b.order_id), '[]'::jsonb) FROM"
        " (SELECT * FROM bad ORDER BY order_id LIMIT %s) b)"
    ).format(
        ov=sql.Identifier(schema, ORDERS),
        cd=sql.Identifier(schema, CUSTOMERS),
        deleted=sql.Identifier("_cf_deleted_at"),
    )


def applies(mappings: list[TableMapping]) -> str | None:
    """The sink schema when both enrichment tables are mapped there, else None (nothing to check)."""
    tables = {(m.sink_schema, m.sink_table) for m in mappings}
    for schema, table in tables:
        if table == ORDERS and (schema, CUSTOMERS) in tables:
            return schema
    return None


def _detail(row: dict[str, Any]) -> DivergentKey:
    """One mismatching order: which enrichment column holds what, and what the directory says."""
    pairs = (
        ("customer_name", row["name"], row["want_name"]),
        ("customer_email", row["email"], row["want_email"]),
    )
    found = "; ".join(f"{col}={got!r} but directory has {want!r}" for col, got, want in pairs if got != want)
    detail = f"customer {row['customer_id']}: {found}"
    return DivergentKey((str(row["order_id"]),), Divergence.ENRICHMENT, (detail,))


def materialized(sink: psycopg.Connection[Any], schema: str) -> bool:
    """Whether ``order_view`` carries the enrichment columns (only the shipping sink adds them;
    a table materialized from the mappings alone has nothing to check)."""
    row = sink.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " AND column_name IN ('customer_name', 'customer_email')",
        [schema, ORDERS],
    ).fetchone()
    sink.rollback()
    return row is not None and int(row[0]) == 2


def check_enrichment(sink: psycopg.Connection[Any], schema: str, limit: int = 20) -> TableResult:
    """Never raises for divergence; database errors propagate to the caller (like compare)."""
    row = sink.execute(enrichment_sql(schema), [limit]).fetchone()
    sink.rollback()
    assert row is not None  # an aggregate query always answers one row
    orders, bad, sample = int(row[0]), int(row[1]), row[2]
    result = TableResult(CHECK_NAME, source_rows=orders, sink_rows=orders, divergent=bad)
    result.keys = [_detail(r) for r in sample]
    return result
