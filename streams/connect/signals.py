"""Trigger Debezium incremental snapshots by inserting a row into the connector's signal table.

The signal table is whatever the live connector names in ``signal.data.collection``; the row is
written with the service's admin login (the Debezium login may only write watermarks there).
Values are bound parameters and the table name goes through the driver's identifier quoting.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence

import psycopg
import pymysql
from psycopg import sql

from streams.errors import ConfigError
from streams.settings import Settings

POSTGRES_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
MARIADB_CLASSES = frozenset({"io.debezium.connector.mariadb.MariaDbConnector"})


def snapshot_signal(tables: Sequence[str]) -> tuple[str, str, str]:
    """(id, type, data) of an ``execute-snapshot`` signal for fully qualified table names."""
    data = json.dumps({"data-collections": list(tables), "type": "incremental"})
    return str(uuid.uuid4()), "execute-snapshot", data


def _collection(config: Mapping[str, str], name: str) -> tuple[str, str]:
    collection = config.get("signal.data.collection", "")
    schema, _, table = collection.rpartition(".")
    if not schema or not table:
        msg = f"connector {name} has no signal.data.collection <schema>.<table>; cannot signal it"
        raise ConfigError(msg)
    return schema, table


def send_snapshot_signal(
    settings: Settings, name: str, config: Mapping[str, str], tables: Sequence[str]
) -> str:
    """Insert the signal row; return its id (Debezium logs it when it starts the snapshot)."""
    schema, table = _collection(config, name)
    signal_id, kind, data = snapshot_signal(tables)
    connector_class = config.get("connector.class", "")
    if connector_class == POSTGRES_CLASS:
        db = settings.source_postgres
        statement = sql.SQL("INSERT INTO {}.{} (id, type, data) VALUES (%s, %s, %s)").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        with psycopg.connect(
            host=db.host,
            port=db.port,
            user=db.user,
            password=db.password.get_secret_value(),
            dbname=db.database,
        ) as conn:
            conn.execute(statement, (signal_id, kind, data))
        return signal_id
    if connector_class in MARIADB_CLASSES:
        maria = settings.source_mariadb
        conn = pymysql.connect(
            host=maria.host,
            port=maria.port,
            user=maria.user,
            password=maria.password.get_secret_value(),
            database=schema,
            autocommit=True,
        )
        try:
            with conn.cursor() as cur:
                quoted = "`" + table.replace("`", "``") + "`"  # MariaDB identifier quoting
                # The identifier is quoted above; the values are bound parameters.
                insert = f"INSERT INTO {quoted} (id, type, data) VALUES (%s, %s, %s)"  # noqa: S608
                cur.execute(insert, (signal_id, kind, data))
        finally:
            conn.close()
        return signal_id
    msg = f"connector {name}: incremental snapshots are not supported for {connector_class}"
    raise ConfigError(msg)
