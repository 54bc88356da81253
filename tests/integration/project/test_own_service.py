"""README "Sync your own service", followed step by step, with no Python written.

A new PostgreSQL table (composite key, quoted mixed-case names, every type the README promises,
a TOASTed text column, REPLICA IDENTITY DEFAULT) and a new MariaDB table (DECIMAL(30,10),
DATETIME(6), JSON, BLOB, composite key) are captured by two connector files of the test's own
project folder and materialized by a worker that reads the project's tables file — mirrored
tables, no columns listed. Edge values are loaded (NULLs, min/max, negative and 1e-6 decimals,
infinity, unicode), the TOASTed rows see updates of their other columns, a primary key changes,
rows are deleted, a column is added at the source: ``changefeed verify`` must say source ≡ sink.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.verify import connections
from tests.polling import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
CF = str(REPO / ".venv/bin/changefeed")
BIG = "ünïcødé 🚀 " * 1500  # ~16 KiB: PostgreSQL TOASTs it


def _pg(settings: Settings) -> psycopg.Connection[Any]:
    """The source PostgreSQL's admin login (what a service owner runs migrations with)."""
    return psycopg.connect(conninfo_from(settings.source_postgres), autocommit=True)


def _maria(settings: Settings) -> pymysql.Connection[Any]:
    conn = connections.mariadb(settings.source_mariadb)
    conn.autocommit(True)
    return conn


def _run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CF, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


class Names:
    def __init__(self) -> None:
        u = uuid.uuid4().hex[:8]
        self.u = u
        self.pg_schema, self.pg_table = f"Billing_{u}", "InvoiceLines"
        self.maria_table = f"ledger_{u}"
        self.pg_connector, self.maria_connector = f"it-billing-{u}", f"it-ledger-{u}"
        self.slot = self.publication = f"it_billing_{u}"
        self.sink_schema = f"it_own_{u}"
        self.app_id = f"it-own-{u}"


def _connector_files(folder: Path, n: Names, maria_db: str) -> None:
    """What a user writes: one connector file per source, like connectors/*.json."""
    converters = {
        "key.converter": "io.confluent.connect.avro.AvroConverter",
        "key.converter.schema.registry.url": "{{registry_url}}",
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": "{{registry_url}}",
        "schema.name.adjustment.mode": "avro",
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1",
        "poll.interval.ms": "50",
        "errors.tolerance": "none",
    }
    pg = {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "database.hostname": "{{source_postgres_host}}",
        "database.port": "{{source_postgres_port}}",
        "database.dbname": "{{source_postgres_database}}",
        "database.user": "debezium_customers",
        "database.password": "${file:{{secrets_file}}:customers.password}",
        "topic.prefix": f"billing{n.u}",
        "plugin.name": "pgoutput",
        "publication.name": n.publication,
        "publication.autocreate.mode": "disabled",
        "slot.name": n.slot,
        "table.include.list": f"{n.pg_schema}.{n.pg_table}",
        "snapshot.mode": "initial",
        **converters,
    }
    maria = {
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "tasks.max": "1",
        "database.hostname": "{{source_mariadb_host}}",
        "database.port": "{{source_mariadb_port}}",
        "database.user": "debezium_orders",
        "database.password": "${file:{{secrets_file}}:orders.password}",
        "database.server.id": str(200000 + int(n.u[:4], 16)),
        "topic.prefix": f"ledger{n.u}",
        "database.include.list": maria_db,
        "table.include.list": f"{maria_db}.{n.maria_table}",
        "snapshot.mode": "initial",
        "schema.history.internal.kafka.bootstrap.servers": "{{kafka_bootstrap_servers}}",
        "schema.history.internal.kafka.topic": f"ledger{n.u}.schema-history",
        "schema.history.internal.skip.unparseable.ddl": "false",
        "include.schema.changes": "false",
        **converters,
    }
    for name, config in ((n.pg_connector, pg), (n.maria_connector, maria)):
        (folder / f"{name}.json").write_text(json.dumps({"name": name, "config": config}, indent=2))


TABLES_FILE = """\
# Two mirrored tables: every source column, named and typed from the change events' schemas.
[[tables]]
source = "{pg_schema}.{pg_table}"
sink = "invoice_lines"

[[tables]]
source = "{maria_db}.{maria_table}"
sink = "ledger"
"""

PG_DDL = """
CREATE SCHEMA "{s}";
CREATE TABLE "{s}"."{t}" (
  "InvoiceId" bigint NOT NULL, "LineNo" integer NOT NULL,
  "Amount" numeric, price numeric(20,6), billed_at timestamptz, due date, at_time time,
  attrs jsonb, blob bytea, tags text[], notes text, paid boolean,
  PRIMARY KEY ("InvoiceId", "LineNo"));
GRANT USAGE ON SCHEMA "{s}" TO debezium_customers;
GRANT SELECT ON "{s}"."{t}" TO debezium_customers;
CREATE PUBLICATION {pub} FOR TABLE "{s}"."{t}";
"""
PG_INSERT = (
    'INSERT INTO "{s}"."{t}" ("InvoiceId", "LineNo", "Amount", price, billed_at, due, at_time, attrs,'
    " blob, tags, notes, paid) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
PG_ROWS: list[tuple[Any, ...]] = [
    (
        1,
        1,
        "12345678901234567890.123456789012345678901",
        "-0.000001",
        "2026-01-02 03:04:05.123456+02",
        "2026-02-28",
        "23:59:59.999999",
        '{"a": [1, "ü"], "b": null}',
        b"\x00\xff\x10",
        ["x", "ÿ", "🚀"],
        BIG,
        True,
    ),
    (1, 2, None, None, None, None, None, None, None, None, None, None),
    (
        2,
        1,
        "-99999999999999.000001",
        "99999999999998.999999",
        "infinity",
        "9999-12-31",
        "24:00:00",
        "[]",
        b"",
        [],
        "short",
        False,
    ),
    (
        -9223372036854775808,
        2147483647,
        "1e-6",
        "0",
        "-infinity",
        "0001-01-01",
        "00:00:00",
        '{"k": "v"}',
        b"\x01",
        ["a,b", 'q"uote', None],
        BIG[:9000] + "x",
        None,
    ),
]
MARIA_DDL = (
    "CREATE TABLE `{t}` (account VARCHAR(20) NOT NULL, entry INT NOT NULL, amount DECIMAL(30,10),"
    " posted DATETIME(6), meta JSON, payload BLOB, note VARCHAR(200), PRIMARY KEY (account, entry))"
)
MARIA_INSERT = "INSERT INTO `{t}` VALUES (%s, %s, %s, %s, %s, %s, %s)"
MARIA_ROWS: list[tuple[Any, ...]] = [
    (
        "acc-1",
        1,
        "12345678901234567890.1234567890",
        "2026-01-02 03:04:05.123456",
        '{"z": 1, "a": [true]}',
        b"\x00\x01",
        "ünïcødé 🚀",
    ),
    ("acc-1", 2, "-0.0000000001", "1000-01-01 00:00:00", "{}", b"", None),
    ("ácc-2 🚀", 1, None, None, None, None, "x; DROP TABLE canary; --"),
    (
        "acc-3",
        -2147483648,
        "-99999999999999999999.9999999999",
        "9999-12-31 23:59:59.999999",
        '[1, 2.5, "x"]',
        b"\xff" * 300,
        "'quoted'",
    ),
]


@pytest.fixture
def names() -> Names:
    return Names()


@pytest.fixture
def project(tmp_path: Path, names: Names, settings: Settings) -> Iterator[tuple[Path, dict[str, str]]]:
    """The user's project folder (connectors + tables file) and the environment naming it."""
    folder = tmp_path / "myproject"
    (folder / "connectors").mkdir(parents=True)
    maria_db = settings.source_mariadb.database
    _connector_files(folder / "connectors", names, maria_db)
    (folder / "tables.toml").write_text(
        TABLES_FILE.format(
            pg_schema=names.pg_schema,
            pg_table=names.pg_table,
            maria_db=maria_db,
            maria_table=names.maria_table,
        )
    )
    env = {
        **os.environ,
        "CHANGEFEED_PROJECT__TABLES": str(folder / "tables.toml"),
        "CHANGEFEED_PROJECT__CONNECTORS_DIR": str(folder / "connectors"),
        "CHANGEFEED_PIPELINE__SINK_SCHEMA": names.sink_schema,
        "CHANGEFEED_WORKER__APP_ID": names.app_id,
        "CHANGEFEED_WORKER__METRICS_PORT": "0",
    }
    yield folder, env
    for name in (names.pg_connector, names.maria_connector):
        _run(env, "connectors", "delete", name)
    with _pg(settings) as pg:
        poll(
            lambda: (
                not pg.execute(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active", [names.slot]
                ).fetchone()
            ),
            60,
            "the slot to be released",
        )
        pg.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
            [names.slot],
        )
        pg.execute(f"DROP PUBLICATION IF EXISTS {names.publication}")
        pg.execute(f'DROP SCHEMA IF EXISTS "{names.pg_schema}" CASCADE')
    maria = _maria(settings)
    with maria.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{names.maria_table}`")
    maria.close()
    with psycopg.connect(conninfo_from(settings.sink_postgres), autocommit=True) as sink:
        sink.execute(f'DROP SCHEMA IF EXISTS "{names.sink_schema}" CASCADE')


def test_a_new_service_syncs_from_its_own_files_with_no_python(
    project: tuple[Path, dict[str, str]], names: Names, settings: Settings, tmp_path: Path
) -> None:
    _, env = project
    s, t = names.pg_schema, names.pg_table
    # 0. The source tables and the grants a new table needs (README: "GRANTs a new schema needs").
    with _pg(settings) as pg:
        for statement in PG_DDL.format(s=s, t=t, pub=names.publication).split(";\n"):
            if statement.strip():
                pg.execute(statement)
        pg.cursor().executemany(PG_INSERT.format(s=s, t=t), PG_ROWS[:2])  # rows before: the snapshot
    maria = _maria(settings)
    with maria.cursor() as cur:
        cur.execute(MARIA_DDL.format(t=names.maria_table))
        cur.execute(
            f"GRANT SELECT ON `{settings.source_mariadb.database}`.`{names.maria_table}` TO debezium_orders"
        )
        cur.executemany(MARIA_INSERT.format(t=names.maria_table), MARIA_ROWS[:2])

    # 1. Connectors, from the project's own folder.
    applied = _run(env, "connectors", "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    # 2.-4. A worker reading the project's tables file.
    sink_schema = names.sink_schema
    with psycopg.connect(conninfo_from(settings.sink_postgres), autocommit=True) as sink:
        sink.execute(f'CREATE SCHEMA "{sink_schema}"')
    granted = _run(env, "sink", "grant", "--schema", sink_schema)  # the workers' own login
    assert granted.returncode == 0, granted.stdout + granted.stderr
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([CF, "worker"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # Changes while the pipeline runs: edge values, TOAST-only updates, a key change, deletes.
        with _pg(settings) as pg:
            pg.cursor().executemany(PG_INSERT.format(s=s, t=t), PG_ROWS[2:])
            pg.execute(
                f'UPDATE "{s}"."{t}" SET paid = NOT coalesce(paid, false), price = price + 1'
                " WHERE notes IS NOT NULL"  # only the non-TOAST columns of the TOASTed rows
            )
            pg.execute(f'UPDATE "{s}"."{t}" SET "LineNo" = 99 WHERE "InvoiceId" = 2 AND "LineNo" = 1')
            pg.execute(f'DELETE FROM "{s}"."{t}" WHERE "InvoiceId" = 1 AND "LineNo" = 2')
        with maria.cursor() as cur:
            cur.executemany(MARIA_INSERT.format(t=names.maria_table), MARIA_ROWS[2:])
            cur.execute(
                f"UPDATE `{names.maria_table}` SET amount = amount * -1,"
                " meta = JSON_OBJECT('n', entry) WHERE entry = 1"
            )
            cur.execute(f"UPDATE `{names.maria_table}` SET entry = 7 WHERE account = 'acc-1' AND entry = 2")
            cur.execute(f"DELETE FROM `{names.maria_table}` WHERE account = 'acc-3'")
        verified = _run(env, "verify", "--wait", "180", "--sink-schema", sink_schema, timeout=400)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "invoice_lines" in verified.stdout
        assert "ledger" in verified.stdout

        # A column added at the source becomes a sink column at its next event, no restart.
        with _pg(settings) as pg:
            pg.execute(f'ALTER TABLE "{s}"."{t}" ADD COLUMN "Currency" text')
            pg.execute(f'UPDATE "{s}"."{t}" SET "Currency" = \'EUR\' WHERE "InvoiceId" = 1')
        with psycopg.connect(conninfo_from(settings.sink_postgres), autocommit=True) as sink:

            def currency_arrived() -> bool:
                try:
                    query = f'SELECT count(*) FROM "{sink_schema}".invoice_lines WHERE "Currency" = \'EUR\''
                    return sink.execute(query).fetchone() == (1,)
                except psycopg.errors.UndefinedColumn:
                    return False  # not added yet: the next event that carries it adds it

            poll(currency_arrived, 120, "the added column in the sink")
        verified = _run(env, "verify", "--wait", "60", "--sink-schema", sink_schema, timeout=200)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        worker.terminate()
        worker.wait(30)
        log.close()
        maria.close()
    assert worker.returncode == 0 or worker.returncode < 0, (tmp_path / "worker.log").read_text()[-3000:]
