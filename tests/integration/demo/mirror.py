"""Test-only: demo mappings into a throwaway sink schema, and a direct copy that 'materializes' them.

The copy stands in for the workers so verify can be tested against a converged pair (and then a
deliberately broken one) without depending on the pipeline's timing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from streams.settings import Settings
from streams.sinks import Column, TableMapping, materialized_table_ddl
from streams.verify import connections
from streams.verify.mysql_ident import mysql_ident


def demo_mappings(schema: str, orders_db: str) -> list[TableMapping]:
    def cols(spec: str) -> list[Column]:
        return [Column(name, type=t.strip()) for name, t in (c.split(":") for c in spec.split(";"))]

    return [
        TableMapping(
            "public.customers", "customers", cols(
                "id:bigint;email:text;first_name:text;last_name:text;phone:text;tier:text;"
                "created_at:timestamptz;updated_at:timestamptz;display_name:text;birth_date:date;"
                "credit_limit:numeric(12,2);preferences:jsonb;bio:text;last_login_at:timestamptz"
            ), ["id"], sink_schema=schema,
        ),
        TableMapping(
            f"{orders_db}.orders", "orders", cols(
                "id:bigint;customer_id:bigint;status:text;total_cents:bigint;currency:text;"
                "created_at:timestamptz;updated_at:timestamptz;total:numeric(12,2);"
                "shipping_address:jsonb;gift_message:text;promised_at:timestamptz"
            ), ["id"], sink_schema=schema,
        ),
        TableMapping(
            f"{orders_db}.order_lines", "order_lines", cols(
                "order_id:bigint;line_no:integer;sku:text;quantity:integer;unit_price_cents:bigint;"
                "unit_price:numeric;description:text"
            ), ["order_id", "line_no"], sink_schema=schema,
        ),
    ]  # fmt: skip


def _fix(value: Any) -> Any:
    """What the materializer would store: MariaDB's naive UTC datetimes become instants."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value


def materialize(settings: Settings, sink: psycopg.Connection[Any], mappings: list[TableMapping]) -> None:
    """Create the sink tables and copy every mapped source row into them."""
    for m in mappings:
        for stmt in materialized_table_ddl(m):
            sink.execute(stmt)
        names = [c.source for c in m.columns]
        container, table = m.source_table.split(".")
        if container == settings.source_mariadb.database:
            maria = connections.mariadb(settings.source_mariadb)
            try:
                with maria.cursor() as cur:
                    listed = ", ".join(mysql_ident(n) for n in names)
                    cur.execute(f"SELECT {listed} FROM {mysql_ident(container, table)}")
                    rows = [tuple(_fix(v) for v in r) for r in cur.fetchall()]
            finally:
                maria.close()
        else:
            with connections.postgres(settings.source_postgres) as pg:
                rows = pg.execute(
                    sql.SQL("SELECT {} FROM {}").format(
                        sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(container, table)
                    )
                ).fetchall()
            rows = [tuple(_fix(v) for v in r) for r in rows]
        insert = sql.SQL("INSERT INTO {} ({}, _cf_position) VALUES ({}, '\\x01'::bytea)").format(
            sql.Identifier(m.sink_schema, m.sink_table),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in m.columns),
            sql.SQL(", ").join(sql.Placeholder() for _ in m.columns),
        )
        with sink.cursor() as cur:
            cur.executemany(insert, rows)
    sink.commit()
