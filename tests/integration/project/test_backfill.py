"""A table added to a running connector is backfilled: `connectors apply` signals an incremental
snapshot of it and says so, and the worker, given the table in its tables file, materializes the
rows that existed before capture began (README "Sync your own service", adding a table later)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.integration.project.scratch_project import SIGNAL, ScratchProject

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TABLE = "id bigint PRIMARY KEY, note text"


@pytest.fixture
def project(settings: Settings, tmp_path: Path) -> Iterator[ScratchProject]:
    p = ScratchProject(settings, tmp_path, "bf")
    try:
        yield p
    finally:
        p.close()


def test_a_table_added_to_a_running_connector_is_backfilled(project: ScratchProject) -> None:
    p, s = project, project.pg_schema
    p.pg_tables({"first": TABLE, "added": TABLE})
    with p.pg() as pg:
        for table in ("first", "added"):
            pg.execute(f"INSERT INTO \"{s}\".{table} SELECT g, 'row ' || g FROM generate_series(1, 50) g")
    connector = p.folder / "connectors" / f"{p.pg_connector}.json"
    both = json.loads(connector.read_text())
    first_only = {**both, "config": {**both["config"], "table.include.list": f"{s}.first,{s}.{SIGNAL}"}}
    connector.write_text(json.dumps(first_only))
    created = p.run("connectors", "apply")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "backfilling" not in created.stdout  # a new connector's initial snapshot covers it

    connector.write_text(json.dumps(both))  # the user adds a table to the running connector
    p.tables_file(
        f'[[tables]]\nsource = "{s}.first"\nsink = "first"\n\n'
        f'[[tables]]\nsource = "{s}.added"\nsink = "added"\n'
    )
    updated = p.run("connectors", "apply")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert f"backfilling {s}.added" in updated.stdout, updated.stdout

    p.start()  # sink schema granted to the workers' login, one worker with the new tables file
    verified = p.run("verify", "--wait", "180", "--sink-schema", p.sink_schema, timeout=400)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert len(p.sink_rows("added")) == 50  # rows that existed before the table was captured
