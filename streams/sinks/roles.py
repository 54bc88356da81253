"""The workers' least-privilege sink login: the SQL that creates it and grants it one schema.

The workers need, in the shipping database, exactly: connect; USAGE and CREATE on their sink
schema (they create and additively evolve their tables there, so they own what they create);
their control tables, which live in that schema. Nothing else: no attribute (NOSUPERUSER
NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS), no other schema's tables, no CREATE in
``public`` unless ``public`` is the sink schema, no CREATE on the database (so no new schemas:
an administrator grants each schema, ``changefeed sink grant --schema``). PUBLIC's other
defaults (CONNECT and TEMPORARY on the database, USAGE on ``public``) are left as they are:
other logins of the user's database may rely on them, and they expose no table.

Tables the admin login created earlier (a deployment from before this role, or setup done as
admin) are handed to the role (``ALTER ... OWNER TO``) by name, only those the worker's
mappings and control tables name: the worker's ``CREATE OR REPLACE FUNCTION``, ``ALTER TABLE
ADD COLUMN`` and ``CREATE INDEX`` need ownership, and nothing else in the schema is touched.

The role's password is the setting ``sink_postgres.worker_password`` if set, else a random one
generated once into ``<state_dir>/secrets/sink-secrets.properties`` (mode 0600) for the local
stack; the server receives only its SCRAM verifier.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

from streams.errors import ConfigError
from streams.secrets import ensure_secrets, read_properties, scram_sha256
from streams.settings import Settings
from streams.sinks.ddl import (
    AUDIT_FUNCTION,
    AUDIT_TABLE,
    CONFLICTS_TABLE,
    NOTICES_TABLE,
    OFFSETS_TABLE,
    SNAPSHOT_POINTS_TABLE,
)
from streams.sinks.mapping import DeletePolicy, TableMapping
from streams.sinks.postgres import conninfo_from

SINK_SECRETS_RELATIVE = Path("secrets") / "sink-secrets.properties"
PASSWORD_KEY = "worker.password"  # noqa: S105 - the key's name, not a password
CONTROL_TABLES = (OFFSETS_TABLE, CONFLICTS_TABLE, AUDIT_TABLE, NOTICES_TABLE, SNAPSHOT_POINTS_TABLE)
# Serialises concurrent grants (parallel test fixtures, two `migrate` runs): CREATE ROLE and
# GRANT on one object race with "tuple concurrently updated" otherwise.
_LOCK_KEY = 0x6366_7367  # "cfsg"
_SECRETS_HEADER = "Written by `changefeed sink grant`; read by the workers (their sink login's password)."


@dataclass(frozen=True)
class GrantReport:
    role: str
    schema: str
    created_role: bool
    adopted: tuple[str, ...]


def sink_secrets_file(settings: Settings) -> Path:
    return settings.stack.state_dir.resolve() / SINK_SECRETS_RELATIVE


def _configured_password(settings: Settings) -> str | None:
    pw = settings.sink_postgres.worker_password
    return pw.get_secret_value() if pw is not None and pw.get_secret_value() else None


def worker_password(settings: Settings) -> str:
    """The workers' sink password: the setting, else the local stack's generated one."""
    configured = _configured_password(settings)
    if configured is not None:
        return configured
    path = sink_secrets_file(settings)
    stored = read_properties(path).get(PASSWORD_KEY) if path.exists() else None
    if not stored:
        msg = (
            f"no password for the workers' sink login {settings.sink_postgres.worker_user!r}: set "
            "CHANGEFEED_SINK_POSTGRES__WORKER_PASSWORD, or run `changefeed sink grant` (or "
            f"`changefeed services migrate` on the local stack) to create it in {path}"
        )
        raise ConfigError(msg)
    return stored


def worker_login_conninfo(settings: Settings, application_name: str = "changefeed-worker") -> str:
    """The conninfo of the workers' own least-privilege login (not the admin login)."""
    db = settings.sink_postgres
    login = db.model_copy(update={"user": db.worker_user, "password": SecretStr(worker_password(settings))})
    return conninfo_from(login, application_name=application_name)


def worker_tables(mappings: Iterable[TableMapping], schema: str) -> list[str]:
    """The tables a worker creates in ``schema``: mapped and tombstone tables, control tables."""
    names: list[str] = []
    for m in mappings:
        if m.sink_schema == schema:
            names.append(m.sink_table)
            if m.delete_policy is DeletePolicy.HARD:
                names.append(m.tombstone_table)
    return [*names, *CONTROL_TABLES]


def role_sql(role: str, verifier: str, exists: bool) -> sql.Composed:
    """Create or re-assert the role: a login with no attribute beyond LOGIN."""
    return sql.SQL(
        "{} {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD {}"
    ).format(sql.SQL("ALTER ROLE" if exists else "CREATE ROLE"), sql.Identifier(role), sql.Literal(verifier))


def schema_grants_sql(role: str, database: str, schema: str) -> list[sql.Composed]:
    """Connect to the database; use and create in the sink schema only."""
    r, s = sql.Identifier(role), sql.Identifier(schema)
    return [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), r),
        # PostgreSQL < 15 lets every role create in public; 15+ already revokes it (a no-op there).
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC").format(),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s),
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(s, r),
    ]


def _adopt(conn: psycopg.Connection[Any], role: str, schema: str, tables: Iterable[str]) -> list[str]:
    """Hand the worker's existing tables (and audit function) that another role owns to ``role``."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p')"
        " AND pg_get_userbyid(c.relowner) <> %s ORDER BY 1",
        [schema, list(tables), role],
    ).fetchall()
    adopted = [str(name) for (name,) in rows]
    for name in adopted:  # owned sequences (bigserial ids) and indexes move with the table
        conn.execute(
            sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(schema, name), sql.Identifier(role))
        )
    fn = conn.execute(
        "SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s AND p.proname = %s AND pg_get_userbyid(p.proowner) <> %s",
        [schema, AUDIT_FUNCTION, role],
    ).fetchone()
    if fn is not None:
        conn.execute(
            sql.SQL("ALTER FUNCTION {}() OWNER TO {}").format(
                sql.Identifier(schema, AUDIT_FUNCTION), sql.Identifier(role)
            )
        )
        adopted.append(f"{AUDIT_FUNCTION}()")
    return adopted


def grant_sink_role(settings: Settings, schema: str, adopt: Iterable[str] = ()) -> GrantReport:
    """As the admin login: create/refresh the workers' role and grant it ``schema`` (idempotent).

    ``adopt``: table names in ``schema`` the worker creates (``worker_tables``); those that
    exist and belong to another role are given to the worker's role.
    """
    db = settings.sink_postgres
    role = db.worker_user
    if role == db.user:
        msg = f"sink_postgres.worker_user is the admin login {role!r}: give the workers their own login"
        raise ConfigError(msg)
    password = _configured_password(settings)
    if password is None:
        password = ensure_secrets(sink_secrets_file(settings), (PASSWORD_KEY,), _SECRETS_HEADER)[PASSWORD_KEY]
    with psycopg.connect(conninfo_from(db, application_name="changefeed-sink-grant")) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is not None
        conn.execute(role_sql(role, scram_sha256(password), exists))
        for stmt in schema_grants_sql(role, db.database, schema):
            conn.execute(stmt)
        adopted = _adopt(conn, role, schema, adopt)
    return GrantReport(role, schema, not exists, tuple(adopted))
