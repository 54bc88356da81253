"""Truncates and mapped columns missing from the writer schema, as the sink plans them (pure)."""

from __future__ import annotations

import logging
from dataclasses import replace

import psycopg
import pytest

from streams.errors import ConfigError
from streams.project.tables import parse_tables
from streams.sinks import TableMapping
from streams.sinks.flush import SinkCore, flush_steps
from streams.sinks.mapping import DeletePolicy, TruncatePolicy
from streams.sinks.truncate import truncate_sql
from streams.verify.advice import Capture, ignored_truncate_lines, not_compared_lines, recovery_lines
from streams.verify.compare import TableResult
from tests.unit.sinks.sink_events import pg_event


def render(q: psycopg.sql.Composable) -> str:
    return q.as_string(None)


def _plan(core: SinkCore) -> list[str]:
    """Every statement of the core's next flush, fed empty results."""
    steps = flush_steps(core.batch, "g", "public", core.tables, core.moved, core.pending)
    out = []
    try:
        step = next(steps)
        while True:
            out.append(render(step.query))
            step = steps.send([])
    except StopIteration:
        return out


def test_a_truncate_is_planned_after_the_writes_and_ledgered(customers: TableMapping) -> None:
    core = SinkCore([customers], "g")
    core.add(0, pg_event("c", {"id": 1, "email": "a", "bio": "b"}, 100, offset=0))
    core.add(0, pg_event("t", None, 120, offset=1))
    plan = _plan(core)
    upsert = next(i for i, q in enumerate(plan) if "INSERT INTO" in q and "customer_directory" in q)
    truncate = next(i for i, q in enumerate(plan) if q.startswith("WITH gone AS (DELETE"))
    notice = next(i for i, q in enumerate(plan) if "changefeed_source_notices" in q)
    offsets = next(i for i, q in enumerate(plan) if "changefeed_offsets" in q)
    assert upsert < truncate < notice < offsets  # one transaction, writes first


def test_an_ignored_truncate_warns_and_is_ledgered_but_removes_nothing(
    customers: TableMapping, caplog: pytest.LogCaptureFixture
) -> None:
    core = SinkCore([replace(customers, truncate=TruncatePolicy.IGNORE)], "g")
    with caplog.at_level(logging.WARNING):
        core.add(0, pg_event("t", None, 120, offset=7))
    assert "ignored truncate of public.customers" in caplog.text  # the warning fires now
    plan = _plan(core)
    assert not any("DELETE" in q for q in plan)
    assert any("changefeed_source_notices" in q for q in plan)


def test_truncate_statements_follow_the_delete_policy(customers: TableMapping) -> None:
    hard = render(truncate_sql(customers))
    assert 'DELETE FROM "public"."customer_directory" WHERE "_cf_position" < %s' in hard
    assert '"public"."customer_directory__cf_deleted"' in hard  # tombstones at its position
    soft = render(truncate_sql(replace(customers, delete_policy=DeletePolicy.SOFT)))
    assert soft.startswith('UPDATE "public"."customer_directory" SET "_cf_deleted_at" = %s')
    assert '"_cf_position" < %s AND "_cf_deleted_at" IS NULL' in soft


def test_a_missing_field_is_kept_counted_and_ledgered_once_per_writer_schema(
    customers: TableMapping, caplog: pytest.LogCaptureFixture
) -> None:
    core = SinkCore([customers], "g")
    fields = {"id": "long", "email": "string"}  # the writer schema lost bio
    with caplog.at_level(logging.WARNING):
        for offset in range(3):
            core.add(0, pg_event("u", {"id": offset, "email": "e"}, 100 + offset, offset=offset), fields)
    assert caplog.text.count("has no field 'bio'") == 1
    assert core.pending.missing == {("public.customer_directory", "bio"): 3}
    assert [(n.kind, n.source_column) for n in core.pending.notices] == [("column_missing", "bio")]
    assert all("about" in w.keep for w in core.batch.writes)  # the stored value stays
    complete = {"id": "long", "email": "string", "bio": "string"}
    core.add(0, pg_event("u", {"id": 9, "email": "e", "bio": "b"}, 200, offset=3), complete)
    assert core.pending.missing == {("public.customer_directory", "bio"): 3}


def test_the_tables_file_takes_a_truncate_choice() -> None:
    text = '[[tables]]\nsource = "a.b"\nsink = "c"\ntruncate = "ignore"\n'
    assert parse_tables(text).tables[0].truncate is TruncatePolicy.IGNORE
    with pytest.raises(ConfigError, match="truncate"):
        parse_tables(text.replace('"ignore"', '"wipe"'))


def test_verify_names_columns_it_cannot_compare_and_the_way_back() -> None:
    dropped = TableResult("people", derived=("phone",), source="s.people")
    assert not_compared_lines([dropped]) == [
        "people: NOT COMPARED: phone — mapped, but the source table (s.people) has no such column"
        " (dropped or renamed at the source); the sink keeps its last values (ledgered in"
        " changefeed_source_notices)"
    ]
    missing = TableResult("people", divergent=7, missing=5, source="s.people")
    [line] = recovery_lines([missing, dropped], {"s.people": Capture("pg", "pg.s.people")})
    assert "5 row(s) missing, 2 row(s) different" in line
    assert "`changefeed connectors snapshot pg s.people`" in line
    assert "`changefeed dlq show pg.s.people`" in line
    extra_only = TableResult("kept", divergent=3, extra=3, source="s.kept")
    assert recovery_lines([extra_only], {"s.kept": Capture("pg", "pg.s.kept")}) == []
    notices = [{"sink_table": "sch.kept", "kind": "truncate_ignored"}]
    [why] = ignored_truncate_lines([extra_only], notices)
    assert why.startswith('kept: 1 source TRUNCATE(s) ignored on purpose (truncate = "ignore")')
