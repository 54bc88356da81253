"""Declarative mappings of the shipping service's tables.

``customer_directory`` mirrors ``public.customers``; ``order_view`` holds the order columns of
``orders.orders`` (guarded by the order's position, as every mapping is) and, outside the
mapping, the customer's name and email (guarded by the customer's own position; see enrich.py).

Values are converted by their Debezium semantic type (``streams.cdc.logical``): dates from days,
``ZonedTimestamp`` text to instants, JSON text cast to ``jsonb``, decimals exact. Columns added
here reach existing sink tables through ``ensure_schema`` (``ADD COLUMN IF NOT EXISTS``); rows
written before stay NULL there until their next change (``changefeed verify`` reports them).
"""

from __future__ import annotations

from streams.sinks import Column, TableMapping

CUSTOMERS_TABLE = "customer_directory"
ORDERS_TABLE = "order_view"


def shipping_mappings(schema: str = "public") -> list[TableMapping]:
    return [
        TableMapping(
            source_table="public.customers",
            sink_table=CUSTOMERS_TABLE,
            sink_schema=schema,
            columns=[
                Column("id", "customer_id", "bigint"),
                Column("email"),
                Column("first_name"),
                Column("last_name"),
                Column("phone"),
                Column("tier"),
                Column("display_name"),
                Column("birth_date", type="date"),
                Column("credit_limit", type="numeric(12,2)"),
                Column("preferences", type="jsonb"),
                Column("bio"),  # TOASTed for some rows: placeholders keep the stored value
                Column("last_login_at", type="timestamptz"),
                Column("created_at", type="timestamptz"),
                Column("updated_at", type="timestamptz"),
            ],
            key=["customer_id"],
        ),
        TableMapping(
            source_table="orders.orders",
            sink_table=ORDERS_TABLE,
            sink_schema=schema,
            columns=[
                Column("id", "order_id", "bigint"),
                Column("customer_id", type="bigint"),
                Column("status"),
                Column("total_cents", type="bigint"),
                Column("currency"),
                Column("total", type="numeric(12,2)"),
                Column("shipping_address", type="jsonb"),
                Column("gift_message"),
                Column("promised_at", type="timestamptz"),
                Column("created_at", type="timestamptz"),
                Column("updated_at", type="timestamptz"),
            ],
            key=["order_id"],
        ),
    ]
