"""Apply the demo services' migrations idempotently and create their least-privilege CDC logins.

It also creates the workers' least-privilege sink login and grants it the sink schema
(``grant_sink``, the same as ``changefeed sink grant``), so the local stack's workers never
write as the admin login.

Each database records applied files in its own ``schema_migrations`` table; a file runs once, in
name order. The Debezium logins are (re)created from the secrets file on every run, before the
files that grant to them, so a regenerated secrets file is picked up by simply rerunning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pymysql
from psycopg import sql

from streams.connect.definitions import secrets_file
from streams.project.sink_grant import grant_sink
from streams.secrets import ensure_secrets, mysql_native_hash, scram_sha256
from streams.settings import Settings, SourceMariaDBSettings, SourcePostgresSettings

log = logging.getLogger(__name__)

SERVICES_DIR = Path(__file__).resolve().parent
CUSTOMERS_ROLE = "debezium_customers"
ORDERS_USER = "debezium_orders"
# The MariaDB host part of the login; the server listens on loopback only.
ORDERS_USER_HOST = "%"
_LOCK_KEY = 0x6366_6D69  # "cfmi": serialises concurrent `migrate` runs on PostgreSQL
_LOCK_TIMEOUT_S = 30


@dataclass(frozen=True)
class MigrationReport:
    database: str
    applied: tuple[str, ...]
    skipped: tuple[str, ...]


def migration_files(service: str) -> list[Path]:
    return sorted((SERVICES_DIR / service / "migrations").glob("*.sql"))


def split_statements(text: str) -> list[str]:
    """Split a MariaDB script on ``;`` at end of line, dropping ``--`` comment lines."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";\n") if s.strip().rstrip(";").strip()]


def migrate_postgres(db: SourcePostgresSettings, role_password: str) -> MigrationReport:
    """Create/refresh the replication role, then run pending files, each in its own transaction."""
    applied: list[str] = []
    skipped: list[str] = []
    with psycopg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(), dbname=db.database
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (CUSTOMERS_ROLE,)).fetchone()
        verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
        conn.execute(
            sql.SQL("{} {} WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                verb, sql.Identifier(CUSTOMERS_ROLE), sql.Literal(scram_sha256(role_password))
            )
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.commit()
        done = {row[0] for row in conn.execute("SELECT version FROM public.schema_migrations")}
        for path in migration_files("customers"):
            if path.name in done:
                skipped.append(path.name)
                continue
            with conn.transaction():
                conn.execute(path.read_text(encoding="utf-8").encode())
                conn.execute("INSERT INTO public.schema_migrations (version) VALUES (%s)", (path.name,))
            applied.append(path.name)
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        conn.commit()
    return MigrationReport(f"postgresql {db.host}:{db.port}/{db.database}", tuple(applied), tuple(skipped))


def migrate_mariadb(db: SourceMariaDBSettings, user_password: str) -> MigrationReport:
    """Same for MariaDB; DDL autocommits there, so every file is written to be rerunnable."""
    applied: list[str] = []
    skipped: list[str] = []
    conn = pymysql.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password.get_secret_value(),
        database=db.database,
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK('changefeed_migrate', %s)", (_LOCK_TIMEOUT_S,))
            hashed = mysql_native_hash(user_password)
            cur.execute(
                "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY PASSWORD %s",
                (ORDERS_USER, ORDERS_USER_HOST, hashed),
            )
            cur.execute("ALTER USER %s@%s IDENTIFIED BY PASSWORD %s", (ORDERS_USER, ORDERS_USER_HOST, hashed))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version VARCHAR(255) PRIMARY KEY, "
                "applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
            )
            cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for path in migration_files("orders"):
                if path.name in done:
                    skipped.append(path.name)
                    continue
                for statement in split_statements(path.read_text(encoding="utf-8")):
                    cur.execute(statement)
                cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.name,))
                applied.append(path.name)
            cur.execute("SELECT RELEASE_LOCK('changefeed_migrate')")
    finally:
        conn.close()
    return MigrationReport(f"mariadb {db.host}:{db.port}/{db.database}", tuple(applied), tuple(skipped))


def migrate_all(settings: Settings) -> list[MigrationReport]:
    """Ensure the secrets file, migrate both source databases, then grant the workers' sink login."""
    secrets = ensure_secrets(secrets_file(settings))
    sink = grant_sink(settings)
    return [
        migrate_postgres(settings.source_postgres, secrets["customers.password"]),
        migrate_mariadb(settings.source_mariadb, secrets["orders.password"]),
        MigrationReport(sink.database, sink.applied, ()),
    ]
