"""``order_view`` enrichment: each order with its customer's name and email, rebuilt from the sink.

Faust has no stream joins and its changelog tables can hang on recovery, so the join state is
the sink itself: after a flush has written customers and orders, one statement in the same
transaction copies name and email from ``customer_directory`` (or NULLs from its tombstone table
for a deleted customer) into the ``order_view`` rows of every touched order or customer.

Two guards, so neither side can regress: order columns move only with the order's position
(``_cf_position``, the mapping's guard); customer columns only when the customer's position is
newer than ``customer_position`` — or when the order now points at another customer.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from streams.sinks.ddl import POSITION
from streams.sinks.mapping import TOMBSTONE_SUFFIX

ENRICH_COLUMNS = (
    ("customer_name", "text"),
    ("customer_email", "text"),
    ("customer_position", "bytea"),
    ("enriched_customer_id", "bigint"),
)


def enrich_ddl(schema: str, orders: str) -> list[sql.Composed]:
    """The enrichment columns, and an index so a customer's orders are found without a scan."""
    columns = [
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
            sql.Identifier(schema, orders), sql.Identifier(name), sql.SQL(kind)
        )
        for name, kind in ENRICH_COLUMNS
    ]
    index = sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (customer_id)").format(
        sql.Identifier(f"{orders}__cf_customer_idx"[:63]), sql.Identifier(schema, orders)
    )
    return [*columns, index]


def enrich_sql(schema: str, orders: str, customers: str) -> sql.Composed:
    """Params: order ids[], customer ids[] touched by the batch.

    ``t`` (the touched orders) comes first so that only their customers are read (by primary
    key): deriving ``c`` from every customer cost a scan and sort of the whole directory per
    flush (90 ms at 108k customers, growing with them).
    """
    return sql.SQL(
        "WITH t AS (SELECT order_id, customer_id FROM {ov}"
        " WHERE order_id = ANY(%s::bigint[]) OR customer_id = ANY(%s::bigint[])),"
        " c AS (SELECT DISTINCT ON (customer_id) customer_id, name, email, pos FROM ("
        " SELECT customer_id, concat_ws(' ', first_name, last_name) AS name, email, {pos} AS pos FROM {cd}"
        " WHERE customer_id IN (SELECT customer_id FROM t)"
        " UNION ALL SELECT customer_id, NULL, NULL, {pos} FROM {tomb}"
        " WHERE customer_id IN (SELECT customer_id FROM t)) s"
        " ORDER BY customer_id, pos DESC)"
        " UPDATE {ov} o SET customer_name = c.name, customer_email = c.email,"
        " customer_position = c.pos, enriched_customer_id = c.customer_id"
        " FROM t JOIN c ON c.customer_id = t.customer_id WHERE o.order_id = t.order_id"
        " AND (o.customer_position IS NULL OR o.enriched_customer_id IS DISTINCT FROM o.customer_id"
        " OR o.customer_position < c.pos)"
    ).format(
        pos=sql.Identifier(POSITION),
        cd=sql.Identifier(schema, customers),
        tomb=sql.Identifier(schema, customers + TOMBSTONE_SUFFIX),
        ov=sql.Identifier(schema, orders),
    )


def touched(keys: Iterable[tuple[object, ...]]) -> list[int]:
    return sorted({int(k[0]) for k in keys if isinstance(k[0], int)})
