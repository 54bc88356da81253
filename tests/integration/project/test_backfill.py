"""A table added to a running connector is backfilled: `connectors apply` signals an incremental
snapshot of it and says so, and the worker, given the table in its tables file, materializes the
rows that existed before capture began (README "Sync your own service", step 4)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from streams.settings import Settings
from streams.sinks import conninfo_from
from tests.integration.project.test_own_service import CF, REPO, _pg, _run
from tests.polling import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def scratch(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    u = uuid.uuid4().hex[:8]
    schema = f"bf_{u}"
    folder = tmp_path / "project"
    (folder / "connectors").mkdir(parents=True)
    env = {
        **os.environ,
        "CHANGEFEED_PROJECT__TABLES": str(folder / "tables.toml"),
        "CHANGEFEED_PROJECT__CONNECTORS_DIR": str(folder / "connectors"),
        "CHANGEFEED_PIPELINE__SINK_SCHEMA": f"it_bf_{u}",
        "CHANGEFEED_WORKER__APP_ID": f"it-bf-{u}",
        "CHANGEFEED_WORKER__METRICS_PORT": "0",
        "CHANGEFEED_WORKER__HEAL_CONNECTORS": "false",
    }
    with _pg(settings) as pg:
        pg.execute(f"CREATE SCHEMA {schema}")
        for table in ("first", "added"):
            pg.execute(f"CREATE TABLE {schema}.{table} (id bigint PRIMARY KEY, note text)")
            pg.execute(f"INSERT INTO {schema}.{table} SELECT g, 'row ' || g FROM generate_series(1, 50) g")
        pg.execute(f"CREATE TABLE {schema}.signal (id text PRIMARY KEY, type text NOT NULL, data text)")
        pg.execute(f"GRANT USAGE ON SCHEMA {schema} TO debezium_customers")
        pg.execute(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {schema} TO debezium_customers")
        pg.execute(f"CREATE PUBLICATION bf_{u} FOR TABLE {schema}.first, {schema}.added, {schema}.signal")
    yield u, folder, env
    _run(env, "connectors", "delete", f"it-bf-{u}")
    with _pg(settings) as pg:
        poll(
            lambda: (
                not pg.execute(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active", [f"bf_{u}"]
                ).fetchone()
            ),
            60,
            "the slot to be released",
        )
        pg.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
            [f"bf_{u}"],
        )
        pg.execute(f"DROP PUBLICATION IF EXISTS bf_{u}")
        pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    with psycopg.connect(conninfo_from(settings.sink_postgres), autocommit=True) as sink:
        sink.execute(f'DROP SCHEMA IF EXISTS "it_bf_{u}" CASCADE')


def _connector(folder: Path, u: str, tables: list[str]) -> None:
    schema = f"bf_{u}"
    config = {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "database.hostname": "{{source_postgres_host}}",
        "database.port": "{{source_postgres_port}}",
        "database.dbname": "{{source_postgres_database}}",
        "database.user": "debezium_customers",
        "database.password": "${file:{{secrets_file}}:customers.password}",
        "topic.prefix": f"bf{u}",
        "plugin.name": "pgoutput",
        "publication.name": f"bf_{u}",
        "publication.autocreate.mode": "disabled",
        "slot.name": f"bf_{u}",
        "table.include.list": ",".join(f"{schema}.{t}" for t in [*tables, "signal"]),
        "signal.data.collection": f"{schema}.signal",
        "snapshot.mode": "initial",
        "poll.interval.ms": "50",
        "key.converter": "io.confluent.connect.avro.AvroConverter",
        "key.converter.schema.registry.url": "{{registry_url}}",
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": "{{registry_url}}",
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1",
        "errors.tolerance": "none",
    }
    path = folder / "connectors" / f"it-bf-{u}.json"
    path.write_text(json.dumps({"name": f"it-bf-{u}", "config": config}))


def test_a_table_added_to_a_running_connector_is_backfilled(
    scratch: tuple[str, Path, dict[str, str]], settings: Settings, tmp_path: Path
) -> None:
    u, folder, env = scratch
    _connector(folder, u, ["first"])
    created = _run(env, "connectors", "apply")
    assert created.returncode == 0, created.stdout + created.stderr
    assert "backfilling" not in created.stdout  # a new connector's initial snapshot covers it

    _connector(folder, u, ["first", "added"])  # the user adds a table to the running connector
    (folder / "tables.toml").write_text(
        f'[[tables]]\nsource = "bf_{u}.first"\nsink = "first"\n\n'
        f'[[tables]]\nsource = "bf_{u}.added"\nsink = "added"\n'
    )
    updated = _run(env, "connectors", "apply")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert f"backfilling bf_{u}.added" in updated.stdout, updated.stdout

    with psycopg.connect(conninfo_from(settings.sink_postgres), autocommit=True) as sink:
        sink.execute(f'CREATE SCHEMA "it_bf_{u}"')
    granted = _run(env, "sink", "grant", "--schema", f"it_bf_{u}")
    assert granted.returncode == 0, granted.stdout + granted.stderr
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([CF, "worker"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        verified = _run(env, "verify", "--wait", "180", "--sink-schema", f"it_bf_{u}", timeout=400)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        with psycopg.connect(conninfo_from(settings.sink_postgres), autocommit=True) as sink:
            count = sink.execute(f'SELECT count(*) FROM "it_bf_{u}".added').fetchone()
        assert count == (50,)  # rows that existed before the table was captured
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()
