"""Load and verify against the real stack (the demo's own tables are left alone: each test
materializes into a fresh sink schema)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from streams.demo.project import shipping_mappings
from streams.load import LoadPlan, Mix, run_load
from streams.load.orders import OrdersWriter
from streams.settings import Settings
from streams.sinks import TableMapping
from streams.stack.services import StackContext
from streams.verify import Divergence, VerifyOptions, connections, open_databases, verify_once
from tests.integration.demo.mirror import demo_mappings, materialize


@pytest.fixture
def schema(sink: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"cf_verify_{uuid.uuid4().hex[:10]}"
    sink.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    sink.commit()
    yield name
    sink.rollback()
    sink.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
    sink.commit()


def _maria_one(settings: Settings, query: str, params: tuple[Any, ...]) -> Any:
    conn = connections.mariadb(settings.source_mariadb)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_load_writes_what_it_reports_to_both_sources(settings: Settings, stack: StackContext) -> None:
    plan = LoadPlan(rate=200, duration_s=1.0, mix=Mix.parse("80:15:5"), seed=uuid.uuid4().int % 10_000)
    report = run_load(settings, plan)
    assert report.tally.total == 200
    deleted = {(w.source, w.key) for w in report.writes if w.op.value == "delete"}
    inserted = [(w.source, w.key) for w in report.writes if w.op.value == "insert"]
    live_customers = [k for s, k in inserted if s == "customers" and (s, k) not in deleted]
    live_orders = [k for s, k in inserted if s == "orders" and (s, k) not in deleted]
    with connections.postgres(settings.source_postgres) as pg:
        found = pg.execute(
            "SELECT count(*) FROM public.customers WHERE id = ANY(%s)", [live_customers]
        ).fetchone()
    assert found is not None
    assert found[0] == len(live_customers)
    assert live_orders
    for key in live_orders[:25]:
        assert _maria_one(settings, "SELECT count(*) FROM order_lines WHERE order_id = %s", (key,)) >= 1
        placed = "SELECT count(*) FROM outbox WHERE aggregateid = %s AND type = 'OrderPlaced'"
        assert _maria_one(settings, placed, (str(key),)) == 1
    orders_tx = sum(1 for w in report.writes if w.source == "orders")
    assert report.tally.outbox == orders_tx  # one outbox row per orders transaction
    assert report.tally.rows["customers"] == sum(1 for w in report.writes if w.source == "customers")


def test_order_and_outbox_row_commit_together_or_not_at_all(
    settings: Settings, stack: StackContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox row is written, then the transaction fails: neither order nor event remains."""
    import random

    from streams.load import orders
    from streams.load.keys import KeyPool

    seen: list[int] = []
    original = OrdersWriter._outbox

    def outbox_then_fail(self: OrdersWriter, cur: Any, key: int, *args: Any) -> None:
        original(self, cur, key, *args)
        seen.append(key)
        raise RuntimeError("crash after the outbox insert, before COMMIT")

    monkeypatch.setattr(OrdersWriter, "_outbox", outbox_then_fail)
    conn = orders.connect(settings.source_mariadb)
    try:
        writer = OrdersWriter(conn, random.Random(1), KeyPool(), KeyPool(), large_every=0)
        with pytest.raises(RuntimeError):
            writer.write(orders.WriteOp.INSERT)
    finally:
        conn.close()
    assert seen
    assert _maria_one(settings, "SELECT count(*) FROM orders WHERE id = %s", (seen[0],)) == 0
    assert _maria_one(settings, "SELECT count(*) FROM outbox WHERE aggregateid = %s", (str(seen[0]),)) == 0


def test_verify_passes_on_a_converged_pair_and_names_injected_divergence(
    settings: Settings, sink: psycopg.Connection[Any], schema: str
) -> None:
    run_load(settings, LoadPlan(rate=200, duration_s=0.5, seed=11))  # rows of every shape exist
    mappings: list[TableMapping] = demo_mappings(schema, settings.source_mariadb.database)
    materialize(settings, sink, mappings)
    with open_databases(settings) as dbs:
        results = verify_once(dbs, mappings, VerifyOptions(chunk_size=100))
        assert [r.error for r in results] == [None, None, None]
        assert all(r.ok for r in results), results

        customers = sql.Identifier(schema, "customers")
        ids = [r[0] for r in sink.execute(sql.SQL("SELECT id FROM {} ORDER BY id LIMIT 3").format(customers))]
        sink.execute(
            sql.SQL(
                "UPDATE {} SET credit_limit = coalesce(credit_limit, 0) + 0.01,"
                " first_name = first_name || '!'"
                " WHERE id = %s"
            ).format(customers),
            [ids[0]],
        )
        sink.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(customers), [ids[1]])
        ghost = sql.SQL(
            "INSERT INTO {} (id, email, first_name, last_name, tier, created_at, updated_at, _cf_position)"
            " VALUES (-5, 'ghost@example.com', 'G', 'H', 'gold', now(), now(), '\\x01')"
        )
        sink.execute(ghost.format(customers))
        lines = sql.Identifier(schema, "order_lines")
        sink.execute(
            sql.SQL(
                "UPDATE {} SET unit_price = unit_price * 2 WHERE order_id = (SELECT min(order_id) FROM {})"
            ).format(lines, lines)
        )
        sink.commit()

        results = {r.table: r for r in verify_once(dbs, mappings, VerifyOptions(chunk_size=100))}
    c = results["customers"]
    assert not c.ok
    kinds = {d.key: (d.kind, d.columns) for d in c.keys}
    assert kinds[(str(ids[1]),)] == (Divergence.MISSING, ())
    assert kinds[("-5",)] == (Divergence.EXTRA, ())
    kind, columns = kinds[(str(ids[0]),)]
    assert kind is Divergence.DIFFERENT
    assert set(columns) == {"credit_limit", "first_name"}
    assert results["orders"].ok
    assert not results["order_lines"].ok
    assert all(d.columns == ("unit_price",) for d in results["order_lines"].keys)


def test_verify_cli_exits_1_on_divergence_in_the_shipping_tables(
    settings: Settings, sink: psycopg.Connection[Any], schema: str
) -> None:
    """The real shipping mappings, materialized into a test schema, through `changefeed verify`."""
    mappings = shipping_mappings(schema)
    materialize(settings, sink, mappings)
    cmd = [sys.executable, "-m", "streams", "verify", "--sink-schema", schema, "--limit", "3"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    table = sql.Identifier(schema, "customer_directory")
    sink.execute(sql.SQL("UPDATE {} SET email = upper(email)").format(table))
    sink.commit()
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "different" in bad.stdout
    assert "more (raise --limit" in bad.stdout
