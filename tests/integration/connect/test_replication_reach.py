"""What table-level grants do not protect once a login may replicate (documented in the README).

Both CDC logins are denied SELECT on a table they were not granted, yet read its rows anyway:
PostgreSQL's through a logical slot with another output plugin (test_decoding), MariaDB's from
the binlog (row events and, with binlog_annotate_row_events, the statement text). If either
stops being true, the README's security notes and the migration comments must change with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg import sql

from streams.settings import Settings
from streams.sinks import conninfo_from

pytestmark = pytest.mark.integration
SECRET = "not-granted-to-cdc"


@pytest.fixture
def table() -> str:
    return f"it_reach_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pg_admin(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(conninfo_from(settings.source_postgres), autocommit=True) as conn:
        yield conn


def test_a_replication_login_decodes_tables_it_may_not_select(
    settings: Settings, secrets: dict[str, str], pg_admin: psycopg.Connection[Any], table: str
) -> None:
    t = sql.Identifier("public", table)
    pg_admin.execute(sql.SQL("CREATE TABLE {} (v text)").format(t))
    try:
        pg = settings.source_postgres
        with psycopg.connect(
            host=pg.host,
            port=pg.port,
            user="debezium_customers",
            password=secrets["customers.password"],
            dbname=pg.database,
            autocommit=True,
        ) as cdc:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                cdc.execute(sql.SQL("SELECT * FROM {}").format(t))
            slot = f"it_reach_{uuid.uuid4().hex[:8]}"
            # Temporary: dropped with this session, so WAL is never retained behind it.
            cdc.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding', true)", [slot])
            pg_admin.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(t), [SECRET])
            changes = [
                str(d)
                for (d,) in cdc.execute(
                    "SELECT data FROM pg_logical_slot_get_changes(%s, NULL, NULL)", [slot]
                )
            ]
        assert any(table in c and SECRET in c for c in changes), changes
    finally:
        pg_admin.execute(sql.SQL("DROP TABLE {}").format(t))


def test_a_binlog_reader_sees_changes_of_tables_it_may_not_select(
    settings: Settings, secrets: dict[str, str], table: str
) -> None:
    db = settings.source_mariadb
    admin = pymysql.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password.get_secret_value(),
        database=db.database,
        autocommit=True,
    )
    cdc = pymysql.connect(
        host=db.host,
        port=db.port,
        user="debezium_orders",
        password=secrets["orders.password"],
        database=db.database,
    )
    try:
        with admin.cursor() as a, cdc.cursor() as c:
            c.execute("SHOW MASTER STATUS")
            binlog, start = c.fetchone()[:2]  # type: ignore[index]
            a.execute(f"CREATE TABLE `{table}` (v VARCHAR(40))")
            a.execute(f"INSERT INTO `{table}` VALUES (%s)", [SECRET])
            with pytest.raises(pymysql.err.OperationalError, match="denied"):
                c.execute(f"SELECT * FROM `{table}`")
            c.execute(f"SHOW BINLOG EVENTS IN '{binlog}' FROM {int(start)}")
            events = [(str(r[2]), str(r[5])) for r in c.fetchall()]
        # The row event itself (Write_rows) carries the values; SHOW BINLOG EVENTS names its table,
        # and the Annotate_rows event (binlog_annotate_row_events, on by default) its statement.
        assert any(kind == "Table_map" and f"{db.database}.{table}" in info for kind, info in events), events
        assert any(kind == "Annotate_rows" and SECRET in info for kind, info in events), events
    finally:
        with admin.cursor() as a:
            a.execute(f"DROP TABLE IF EXISTS `{table}`")
        admin.close()
        cdc.close()
