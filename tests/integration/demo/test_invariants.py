"""The invariant checker against a real sink, and the orders load keeping the invariant at the source.

The checker is proven independent of any pipeline timing: the demo's declared tables are created
in a throwaway sink schema and written directly, once consistent and once half-applied (an order
without its lines, lines without their order), as a sink applying changes one by one can show.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from streams.demo.project import TABLES, shipping_mappings
from streams.load import LoadPlan, Mix, WriteOp, run_load
from streams.project.tables import load_tables
from streams.settings import Settings
from streams.sinks import materialized_table_ddl
from streams.stack.services import StackContext
from streams.verify import connections
from streams.verify.invariants import watch

SPECS = load_tables(TABLES).invariants
TOTAL, ORPHANS = "order total equals the sum of its lines", "every order line has its order"


@pytest.fixture
def schema(sink: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"cf_inv_{uuid.uuid4().hex[:10]}"
    sink.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    for m in shipping_mappings(name):
        for stmt in materialized_table_ddl(m):
            sink.execute(stmt)
    sink.commit()
    yield name
    sink.rollback()
    sink.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
    sink.commit()


def _order(sink: psycopg.Connection[Any], schema: str, order_id: int, total: int) -> None:
    sink.execute(
        sql.SQL("INSERT INTO {} (order_id, customer_id, status, total_cents, _cf_position)"
                " VALUES (%s, 1, 'placed', %s, '\\x01')").format(sql.Identifier(schema, "order_view")),
        [order_id, total],
    )  # fmt: skip


def _line(
    sink: psycopg.Connection[Any], schema: str, order_id: int, line_no: int, qty: int, cents: int
) -> None:
    sink.execute(
        sql.SQL("INSERT INTO {} (order_id, line_no, sku, quantity, unit_price_cents, _cf_position)"
                " VALUES (%s, %s, 'SKU', %s, %s, '\\x01')").format(sql.Identifier(schema, "order_lines")),
        [order_id, line_no, qty, cents],
    )  # fmt: skip


def test_the_demo_declares_both_directions_of_the_order_lines_invariant() -> None:
    assert [s.name for s in SPECS] == [TOTAL, ORPHANS]


def test_checker_finds_nothing_on_a_consistent_sink_and_every_half_applied_order(
    sink: psycopg.Connection[Any], schema: str
) -> None:
    _order(sink, schema, 1, 2 * 150 + 300)
    _line(sink, schema, 1, 1, 2, 150)
    _line(sink, schema, 1, 2, 1, 300)
    _order(sink, schema, 2, 0)  # no lines and nothing to pay: consistent
    sink.commit()
    clean = watch(sink, SPECS, schema)
    assert clean.ok, clean
    assert clean.rounds == 1
    assert [t.rounds for t in clean.tallies] == [1, 1]

    _order(sink, schema, 3, 999)  # the order applied, its lines not yet
    _line(sink, schema, 4, 1, 1, 10)  # lines applied, their order not yet
    _line(sink, schema, 4, 2, 1, 10)
    sink.execute(  # a line's quantity bumped without the order's total
        sql.SQL("UPDATE {} SET quantity = quantity + 1 WHERE order_id = 1 AND line_no = 1").format(
            sql.Identifier(schema, "order_lines")
        )
    )
    sink.commit()
    broken = watch(sink, SPECS, schema, seconds=0.3, interval_ms=50)
    total, orphans = broken.tallies
    assert not broken.ok
    assert broken.rounds >= 2
    assert total.keys == {("1",), ("3",)}
    assert total.violating_rounds == total.rounds == broken.rounds
    assert any("total_cents=999" in e and "lines_cents=0" in e for e in total.examples), total.examples
    assert orphans.keys == {("4", "1"), ("4", "2")}  # two key columns: each line once, every round


def test_every_invariant_of_a_round_reads_one_snapshot(
    settings: Settings, sink: psycopg.Connection[Any], schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer commits an orphan line between a round's two queries: that round must not see it."""
    from streams.verify import invariants as checker

    original = checker._record
    committed: list[bool] = []

    def record_then_write(tally: Any, spec: Any, names: Any, rows: Any) -> None:
        original(tally, spec, names, rows)
        if not committed:
            with connections.postgres(settings.sink_postgres) as other:
                other.execute(
                    sql.SQL("INSERT INTO {} (order_id, line_no, sku, quantity, unit_price_cents,"
                            " _cf_position) VALUES (99, 1, 'SKU', 1, 5, '\\x01')").format(
                        sql.Identifier(schema, "order_lines"))
                )  # fmt: skip
                other.commit()
            committed.append(True)

    monkeypatch.setattr(checker, "_record", record_then_write)
    report = watch(sink, SPECS, schema)
    assert committed
    assert report.ok, report  # the first query's snapshot: the line did not exist yet
    assert watch(sink, SPECS, schema).tallies[1].keys == {("99", "1")}  # the next round sees it


def test_cli_reports_violations_with_exit_1_and_a_bad_query_with_exit_2(
    settings: Settings, sink: psycopg.Connection[Any], schema: str
) -> None:
    cmd = [sys.executable, "-m", "streams", "verify", "invariants", "--sink-schema", schema]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    _order(sink, schema, 5, 100)
    sink.commit()
    bad = subprocess.run([*cmd, "--watch", "0.5", "--interval-ms", "100"], capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "order_id=5 total_cents=100 lines_cents=0" in bad.stdout
    missing = [*cmd[:-1], f"{schema}_nope"]
    gone = subprocess.run(missing, capture_output=True, text=True, timeout=60, check=False)
    assert gone.returncode == 2, gone.stdout + gone.stderr
    assert "does not exist" in gone.stdout
    assert "--sink-schema" in gone.stdout


def test_the_orders_load_keeps_every_total_equal_to_its_lines(
    settings: Settings, stack: StackContext
) -> None:
    """Updates bump a line's quantity; the order's total must follow in the same transaction."""
    seed = uuid.uuid4().int % 100_000
    report = run_load(settings, LoadPlan(rate=400, duration_s=1.0, mix=Mix(30, 60, 10), seed=seed,
                                         sources=("orders",)))  # fmt: skip
    updated = {w.key for w in report.writes if w.op is WriteOp.UPDATE and w.rows.get("order_lines")}
    deleted = {w.key for w in report.writes if w.op is WriteOp.DELETE}
    touched = sorted({w.key for w in report.writes} - deleted)
    assert updated - deleted, "no update bumped a line: the test proves nothing"
    maria = connections.mariadb(settings.source_mariadb)
    try:
        with maria.cursor() as cur:
            cur.execute(
                "SELECT o.id, o.total_cents, COALESCE(SUM(l.quantity * l.unit_price_cents), 0) AS s"
                " FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id WHERE o.id IN %s"
                " GROUP BY o.id, o.total_cents HAVING o.total_cents <> s",
                (touched,),
            )
            wrong = cur.fetchall()
            cur.execute("SELECT count(*) FROM order_lines WHERE order_id IN %s", (sorted(deleted) or [0],))
            orphans = cur.fetchone()[0]
    finally:
        maria.close()
    assert wrong == ()
    assert orphans == 0


def test_the_demo_checker_counts_rounds_until_stopped_and_then_checks_once_more(
    settings: Settings, sink: psycopg.Connection[Any], schema: str
) -> None:
    from streams.demo.invariants import DemoInvariants
    from tests.polling import poll

    _order(sink, schema, 9, 70)  # broken before the run (a baseline key): never counted
    sink.commit()
    checker = DemoInvariants(settings, schema)
    checker.start()
    assert checker.ignored == 1
    poll(lambda: checker.rounds >= 1, 10, "the checker's first round", interval_s=0.05)
    _order(sink, schema, 8, 50)  # half applied during the run: no lines yet
    sink.commit()
    seen = checker.rounds
    poll(
        lambda: checker.rounds >= seen + 2, 10, "a whole round after the half-applied order", interval_s=0.05
    )
    _line(sink, schema, 8, 1, 1, 50)
    sink.commit()
    during, error = checker.stop()
    after = checker.final()
    assert error == ""
    assert during is not None
    assert during.rounds >= 1
    assert during.tallies[0].keys == {("8",)}
    assert after is not None
    assert after.ok
