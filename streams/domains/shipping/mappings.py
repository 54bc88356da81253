"""Declarative mappings of the shipping service's tables.

``customer_directory`` mirrors ``public.customers``; ``order_view`` holds the order columns of
``orders.orders`` (guarded by the order's position, as every mapping is) and, outside the
mapping, the customer's name and email (guarded by the customer's own position; see enrich.py).
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
            ],
            key=["order_id"],
        ),
    ]
