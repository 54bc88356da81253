"""A scratch project of its own on the shared stack: source tables in a private PostgreSQL schema
(and MariaDB tables), connector files that capture them (TRUNCATE included, a signal table of
their own for incremental snapshots), a tables file, a worker process and the CLI.

Every name carries a random suffix; ``close`` deletes the connectors, slot, publication, source
tables and sink schema again. Used by the schema-change tests (dropped and renamed columns,
truncates), which must alter and truncate tables of their own, never the demo's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pymysql

from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.stack.smoke import delete_topics
from tests.polling import poll

REPO = Path(__file__).resolve().parents[3]
CF = str(REPO / ".venv/bin/changefeed")
SIGNAL = "changefeed_signal"

CONVERTERS = {
    "key.converter": "io.confluent.connect.avro.AvroConverter",
    "key.converter.schema.registry.url": "{{registry_url}}",
    "value.converter": "io.confluent.connect.avro.AvroConverter",
    "value.converter.schema.registry.url": "{{registry_url}}",
    "schema.name.adjustment.mode": "avro",
    "topic.creation.default.replication.factor": "1",
    "topic.creation.default.partitions": "1",
    "poll.interval.ms": "50",
    "errors.tolerance": "none",
    "skipped.operations": "none",  # what connectors/*.json set: TRUNCATE reaches the topic
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ScratchProject:
    def __init__(self, settings: Settings, folder: Path, label: str) -> None:
        u = uuid.uuid4().hex[:8]
        self.settings, self.folder, self.u = settings, folder, u
        self.pg_schema = f"{label}_{u}"
        self.pg_connector = f"it-{label}-pg-{u}".replace("_", "-")
        self.maria_connector = f"it-{label}-maria-{u}".replace("_", "-")
        self.slot = self.publication = f"it_{label}_{u}"
        self.pg_prefix, self.maria_prefix = f"{label}pg{u}", f"{label}my{u}"
        self.sink_schema = f"it_{label}_{u}"
        self.maria_db = settings.source_mariadb.database
        self.maria_tables: list[str] = []
        self.metrics_port = free_port()
        self.worker: subprocess.Popen[bytes] | None = None
        self.log_path = folder / "worker.log"
        (folder / "connectors").mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "CHANGEFEED_PROJECT__TABLES": str(folder / "tables.toml"),
            "CHANGEFEED_PROJECT__CONNECTORS_DIR": str(folder / "connectors"),
            "CHANGEFEED_PIPELINE__SINK_SCHEMA": self.sink_schema,
            "CHANGEFEED_WORKER__APP_ID": f"it-{label}-{u}",
            "CHANGEFEED_WORKER__METRICS_PORT": str(self.metrics_port),
        }

    # --- databases -------------------------------------------------------------------------
    def pg(self) -> psycopg.Connection[Any]:
        return psycopg.connect(conninfo_from(self.settings.source_postgres), autocommit=True)

    def maria(self) -> pymysql.Connection[Any]:
        db = self.settings.source_mariadb
        return pymysql.connect(
            host=db.host,
            port=db.port,
            user=db.user,
            password=db.password.get_secret_value(),
            database=db.database,
            autocommit=True,
        )

    def sink(self) -> psycopg.Connection[Any]:
        return psycopg.connect(conninfo_from(self.settings.sink_postgres), autocommit=True)

    def pg_tables(self, ddl: dict[str, str]) -> None:
        """``{table: column definitions}`` in the private schema, plus the signal table; all
        published and readable by the customers connector's login."""
        s = self.pg_schema
        with self.pg() as pg:
            pg.execute(f'CREATE SCHEMA "{s}"')
            pg.execute(
                f'CREATE TABLE "{s}".{SIGNAL}'
                " (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data text)"
            )
            for table, columns in ddl.items():
                pg.execute(f'CREATE TABLE "{s}"."{table}" ({columns})')
            pg.execute(f'GRANT USAGE ON SCHEMA "{s}" TO debezium_customers')
            pg.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{s}" TO debezium_customers')
            # Incremental snapshots write open/close watermarks into the signal table.
            pg.execute(f'GRANT INSERT ON "{s}".{SIGNAL} TO debezium_customers')
            listed = ", ".join(f'"{s}"."{t}"' for t in [*ddl, SIGNAL])
            pg.execute(f"CREATE PUBLICATION {self.publication} FOR TABLE {listed}")
        config = {
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": "1",
            "database.hostname": "{{source_postgres_host}}",
            "database.port": "{{source_postgres_port}}",
            "database.dbname": "{{source_postgres_database}}",
            "database.user": "debezium_customers",
            "database.password": "${file:{{secrets_file}}:customers.password}",
            "topic.prefix": self.pg_prefix,
            "plugin.name": "pgoutput",
            "publication.name": self.publication,
            "publication.autocreate.mode": "disabled",
            "slot.name": self.slot,
            "table.include.list": ",".join(f"{s}.{t}" for t in [*ddl, SIGNAL]),
            "signal.data.collection": f"{s}.{SIGNAL}",
            "snapshot.mode": "initial",
            **CONVERTERS,
        }
        self._connector_file(self.pg_connector, config)

    def mariadb_tables(self, ddl: dict[str, str]) -> None:
        """``{table: column definitions}`` in the orders database (names get the suffix)."""
        conn = self.maria()
        with conn.cursor() as cur:
            for table, columns in ddl.items():
                name = f"{table}_{self.u}"
                self.maria_tables.append(name)
                cur.execute(f"CREATE TABLE `{name}` ({columns})")
                cur.execute(f"GRANT SELECT ON `{self.maria_db}`.`{name}` TO debezium_orders")
        conn.close()
        config = {
            "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
            "tasks.max": "1",
            "database.hostname": "{{source_mariadb_host}}",
            "database.port": "{{source_mariadb_port}}",
            "database.user": "debezium_orders",
            "database.password": "${file:{{secrets_file}}:orders.password}",
            "database.server.id": str(300000 + int(self.u[:4], 16)),
            "topic.prefix": self.maria_prefix,
            "database.include.list": self.maria_db,
            "table.include.list": ",".join(f"{self.maria_db}.{t}" for t in self.maria_tables),
            "snapshot.mode": "initial",
            "schema.history.internal.kafka.bootstrap.servers": "{{kafka_bootstrap_servers}}",
            "schema.history.internal.kafka.topic": f"{self.maria_prefix}.schema-history",
            "schema.history.internal.skip.unparseable.ddl": "false",
            "include.schema.changes": "false",
            **CONVERTERS,
        }
        self._connector_file(self.maria_connector, config)

    def _connector_file(self, name: str, config: dict[str, str]) -> None:
        (self.folder / "connectors" / f"{name}.json").write_text(json.dumps({"name": name, "config": config}))

    def tables_file(self, text: str) -> None:
        (self.folder / "tables.toml").write_text(text)

    # --- the CLI and the worker ------------------------------------------------------------
    def run(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CF, *args],
            cwd=REPO,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> None:
        """Connectors applied, the sink schema granted, one worker running."""
        applied = self.run("connectors", "apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        with self.sink() as sink:
            sink.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.sink_schema}"')
        granted = self.run("sink", "grant", "--schema", self.sink_schema)
        assert granted.returncode == 0, granted.stdout + granted.stderr
        log = self.log_path.open("ab")
        self.worker = subprocess.Popen(
            [CF, "worker"], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the worker's Prometheus endpoint (0 when absent)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return 0.0
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
                sample, _, value = line.rpartition(" ")
                got = sample[len(name) :].strip("{}")
                if ",".join(sorted(got.split(","))) == want:
                    return float(value)
        return 0.0

    def sink_rows(self, table: str, columns: str = "*", where: str = "true") -> list[tuple[Any, ...]]:
        with self.sink() as sink:
            try:
                return sink.execute(
                    f'SELECT {columns} FROM "{self.sink_schema}"."{table}" WHERE {where} ORDER BY 1'
                ).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def notices(self) -> list[tuple[Any, ...]]:
        with self.sink() as sink:
            try:
                return sink.execute(
                    "SELECT sink_table, kind, source_column, rows"
                    f' FROM "{self.sink_schema}".changefeed_source_notices ORDER BY id'
                ).fetchall()
            except psycopg.errors.UndefinedTable:
                return []

    def connector_state(self, name: str) -> list[str]:
        """The connector's and its tasks' states."""
        r = httpx.get(f"{self.settings.connect.url}/connectors/{name}/status", timeout=5)
        if r.status_code != 200:
            return []
        body = r.json()
        return [body["connector"]["state"], *(t["state"] for t in body.get("tasks", []))]

    # --- cleanup -----------------------------------------------------------------------------
    def close(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(30)
        for name in (self.pg_connector, self.maria_connector):
            if (self.folder / "connectors" / f"{name}.json").exists():
                self.run("connectors", "delete", name)
        with self.pg() as pg:

            def released() -> bool:
                row = pg.execute(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active", [self.slot]
                ).fetchone()
                return row is None

            poll(released, 60, "the slot to be released")
            pg.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                [self.slot],
            )
            pg.execute(f"DROP PUBLICATION IF EXISTS {self.publication}")
            pg.execute(f'DROP SCHEMA IF EXISTS "{self.pg_schema}" CASCADE')
        conn = self.maria()
        with conn.cursor() as cur:
            for name in self.maria_tables:
                cur.execute(f"DROP TABLE IF EXISTS `{name}`")
        conn.close()
        with self.sink() as sink:
            sink.execute(f'DROP SCHEMA IF EXISTS "{self.sink_schema}" CASCADE')
        delete_topics(self.settings, self.topics())

    def topics(self) -> list[str]:
        """This project's change, dead-letter and schema-history topics."""
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka.bootstrap_servers)
        try:
            names = consumer.topics()
        finally:
            consumer.close()
        return sorted(t for t in names if t.startswith((f"{self.pg_prefix}.", f"{self.maria_prefix}.")))
