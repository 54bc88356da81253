"""``ensure_schema`` migrates existing sink tables: every mapped value column is added if missing."""

from __future__ import annotations

from streams.demo.project import shipping_mappings
from streams.sinks import Column, TableMapping
from streams.sinks.ddl import added_columns_ddl, materialized_table_ddl
from streams.sinks.flush import SinkCore
from streams.sinks.postgres import schema_steps


def test_added_columns_are_add_column_if_not_exists_for_each_value_column() -> None:
    m = TableMapping(
        "public.customers",
        "cd",
        [Column("id", "customer_id", "bigint"), Column("bio"), Column("credit_limit", type="numeric(12,2)")],
        ["customer_id"],
        sink_schema="s",
    )
    texts = [q.as_string(None) for q in added_columns_ddl(m)]
    assert texts == [
        'ALTER TABLE "s"."cd" ADD COLUMN IF NOT EXISTS "bio" text',
        'ALTER TABLE "s"."cd" ADD COLUMN IF NOT EXISTS "credit_limit" numeric(12,2)',
    ]  # keys are never added (they are the primary key from CREATE TABLE); no NOT NULL on old rows


def test_schema_steps_create_then_migrate_every_shipping_column() -> None:
    core = SinkCore(shipping_mappings("s"), "g", control_schema="s")
    texts = [s.query.as_string(None) for s in schema_steps(core, audit=False)]
    for m in core.mappings.values():
        create = materialized_table_ddl(m)[0].as_string(None)
        assert texts.index(create) < min(texts.index(a.as_string(None)) for a in added_columns_ddl(m))
    for name in ("bio", "preferences", "last_login_at", "shipping_address", "promised_at", "gift_message"):
        assert any(t.endswith(f'ADD COLUMN IF NOT EXISTS "{name}" ' + t.rsplit(" ", 1)[1]) for t in texts), (
            name
        )
