"""E7: the workers write to the sink with their own least-privilege login, never a superuser.

The login may use and create in its sink schema only: it cannot read a table elsewhere, call a
superuser function, create roles or schemas; a worker running with it materializes every row;
the audit trigger function (CREATE OR REPLACE) works as that login; and tables the admin login
created before are handed to it by `sink grant`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from streams.app import worker_conninfo
from streams.cli.main import app
from streams.demo.project import shipping_mappings
from streams.errors import SinkSchemaError
from streams.settings import Settings
from streams.sinks import PostgresSink, conninfo_from
from streams.sinks.roles import grant_sink_role, worker_login_conninfo, worker_tables
from tests.integration.streams.helpers import Crafter, Worker
from tests.integration.streams.test_private_topic import caught_up, fill, rows
from tests.polling import poll

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[tuple[object, ...]]
CUSTOMERS = 40


@pytest.fixture
def outside(sink: Conn) -> Iterator[str]:
    """Another schema, usable by everyone, with a table the workers' login must not read."""
    name = f"it_outside_{uuid.uuid4().hex[:10]}"
    s = sql.Identifier(name)
    sink.execute(sql.SQL("CREATE SCHEMA {}").format(s))
    sink.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(s))
    sink.execute(sql.SQL("CREATE TABLE {}.secret (v text)").format(s))
    sink.execute(sql.SQL("INSERT INTO {}.secret VALUES ('not for workers')").format(s))
    yield name
    sink.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(s))


def _denied(conn: Conn, statement: str) -> bool:
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


@pytest.mark.scenario("E7")
def test_the_workers_login_is_least_privilege_and_materializes_every_row(
    settings: Settings,
    sink: Conn,
    schema: str,
    outside: str,
    topic: str,
    crafter: Crafter,
    workers: Callable[..., Worker],
    scenario_numbers: dict[str, Any],
) -> None:
    role = settings.sink_postgres.worker_user
    group = f"it-role-{uuid.uuid4().hex[:8]}"
    # As the login, with the audit triggers: CREATE OR REPLACE FUNCTION works for its owner, twice.
    audited = PostgresSink(
        worker_login_conninfo(settings), shipping_mappings(schema), group, control_schema=schema
    )
    audited.ensure_schema(audit=True)
    audited.ensure_schema(audit=True)
    audited.close()
    fill(crafter, topic, customers=CUSTOMERS)
    w = workers(group, schema, [topic])
    poll(lambda: caught_up(settings, sink, schema, group, topic), 120, "the worker to catch up")
    users = {
        str(u)
        for (u,) in sink.execute(
            "SELECT usename FROM pg_stat_activity WHERE application_name LIKE %s", [f"{group}-%"]
        ).fetchall()
    }
    got = [(cid, email) for cid, email, _ in rows(sink, schema)]
    want = [(cid, f"c{cid}-{1000 + cid * 10 + 2}@it.test") for cid in range(1, CUSTOMERS + 1)]
    audit = sink.execute(sql.SQL("SELECT count(*) FROM {}.changefeed_audit").format(sql.Identifier(schema)))
    audit_rows = int(audit.fetchone()[0])  # type: ignore[index]
    assert w.stop() == 0, w.text()[-3000:]
    owners = {
        str(o)
        for (o,) in sink.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND relkind = 'r'",
            [schema],
        ).fetchall()
    }
    with psycopg.connect(worker_login_conninfo(settings), autocommit=True) as login:
        attrs = login.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls,"
            " (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)"
            " FROM pg_roles r WHERE rolname = current_user"
        ).fetchone()
        denied = {
            "read another schema's table": _denied(login, f'SELECT * FROM "{outside}".secret'),
            "pg_read_file": _denied(login, "SELECT pg_read_file('PG_VERSION')"),
            "pg_ls_dir": _denied(login, "SELECT pg_ls_dir('.')"),
            "create role": _denied(login, f"CREATE ROLE it_evil_{uuid.uuid4().hex[:8]}"),
            "create schema": _denied(login, f"CREATE SCHEMA it_evil_{uuid.uuid4().hex[:8]}"),
            "create in another schema": _denied(login, f'CREATE TABLE "{outside}".evil (i int)'),
            "write another schema": _denied(login, f"INSERT INTO \"{outside}\".secret VALUES ('x')"),
        }
    scenario_numbers.update(
        {
            "worker_sink_users": sorted(users),
            "rows": len(got),
            "rows_equal": sum(1 for a, b in zip(want, got, strict=False) if a == b),
            "audit_rows": audit_rows,
            "denied": sum(denied.values()),
            "checked": len(denied),
        }
    )
    assert users == {role}, f"the worker's sink sessions ran as {users}"
    assert got == want  # source (the crafted changes' last versions) == sink
    assert audit_rows >= CUSTOMERS
    assert owners == {role}
    assert attrs == (False, False, False, False, False, 0)
    assert all(denied.values()), denied


def test_grant_hands_the_admins_existing_worker_tables_to_the_login(settings: Settings, schema: str) -> None:
    """A sink set up by the admin login (an older deployment): the login cannot evolve it until granted."""
    mappings = shipping_mappings(schema)
    admin = PostgresSink(conninfo_from(settings.sink_postgres), mappings, "it-adopt", control_schema=schema)
    admin.ensure_schema(audit=True)
    admin.close()
    login = PostgresSink(worker_login_conninfo(settings), mappings, "it-adopt", control_schema=schema)
    try:
        with pytest.raises(SinkSchemaError, match="must be owner"):
            login.ensure_schema()
        done = CliRunner().invoke(app, ["sink", "grant", "--schema", schema])
        assert done.exit_code == 0, done.output
        text = " ".join(done.output.split())  # rich wraps at the runner's width
        for name in (
            "customer_directory",
            "order_view__cf_deleted",
            "changefeed_offsets",
            "changefeed_audit_row()",
        ):
            assert f"owner of {schema}.{name}" in text, text
        login.ensure_schema(audit=True)  # owner now: CREATE OR REPLACE, ADD COLUMN, triggers
        again = grant_sink_role(settings, schema, worker_tables(mappings, schema))
        assert again.adopted == ()
    finally:
        login.close()


def test_the_worker_connects_as_its_own_login_not_the_admin(settings: Settings) -> None:
    info = psycopg.conninfo.conninfo_to_dict(worker_conninfo(settings, "it"))
    assert info["user"] == settings.sink_postgres.worker_user != settings.sink_postgres.user
