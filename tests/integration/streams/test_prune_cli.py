"""`changefeed prune` against the shared stack's sink, on a private schema."""

from __future__ import annotations

import psycopg
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.demo.project import shipping_mappings
from streams.settings import Settings
from streams.sinks import PostgresSink, conninfo_from

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[tuple[object, ...]]


def test_prune_counts_then_removes_only_old_tombstones(settings: Settings, sink: Conn, schema: str) -> None:
    PostgresSink(conninfo_from(settings.sink_postgres), shipping_mappings(schema), "it", control_schema=schema
                 ).ensure_schema()  # fmt: skip
    sink.execute(
        f'INSERT INTO "{schema}".customer_directory__cf_deleted (customer_id, _cf_position, _cf_deleted_at)'
        " VALUES (1, '\\x01', now() - interval '9 days'), (2, '\\x02', now() - interval '1 day')"
    )
    env = {"CHANGEFEED_PIPELINE__SINK_SCHEMA": schema}
    dry = CliRunner().invoke(app, ["prune", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert sink.execute(f'SELECT count(*) FROM "{schema}".customer_directory__cf_deleted').fetchone() == (2,)
    done = CliRunner().invoke(app, ["prune", "--tombstones-older-than", "7d"], env=env)
    assert done.exit_code == 0, done.output
    left = sink.execute(f'SELECT customer_id FROM "{schema}".customer_directory__cf_deleted').fetchall()
    assert left == [(2,)]


def test_prune_rejects_a_bad_duration_with_an_example() -> None:
    result = CliRunner().invoke(app, ["prune", "--conflicts-older-than", "a month"])
    assert result.exit_code == 2
    assert "e.g. 7d" in " ".join(result.output.split())  # rich wraps at the runner's width
