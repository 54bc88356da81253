"""The workers' sink login: its password source, the tables it owns, the role SQL it runs."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from streams.demo.project import shipping_mappings
from streams.errors import ConfigError
from streams.settings import Settings
from streams.sinks.roles import (
    CONTROL_TABLES,
    grant_sink_role,
    role_sql,
    schema_grants_sql,
    sink_secrets_file,
    worker_login_conninfo,
    worker_password,
    worker_tables,
)


def settings(tmp_path: Path, password: str | None = None, user: str = "changefeed_sink") -> Settings:
    sink: dict[str, object] = {"worker_user": user}
    if password is not None:
        sink["worker_password"] = SecretStr(password)
    return Settings(stack={"state_dir": tmp_path}, sink_postgres=sink)  # type: ignore[arg-type]


def test_the_configured_password_wins_over_the_local_file(tmp_path: Path) -> None:
    s = settings(tmp_path, "from-settings")
    sink_secrets_file(s).parent.mkdir(parents=True)
    sink_secrets_file(s).write_text("worker.password=from-file\n")
    assert worker_password(s) == "from-settings"
    assert worker_password(settings(tmp_path)) == "from-file"


def test_no_password_anywhere_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="changefeed sink grant"):
        worker_password(settings(tmp_path))


def test_the_worker_conninfo_uses_the_worker_login_not_the_admin(tmp_path: Path) -> None:
    info = psycopg.conninfo.conninfo_to_dict(worker_login_conninfo(settings(tmp_path, "pw"), "app-1"))
    assert (info["user"], info["password"], info["application_name"]) == ("changefeed_sink", "pw", "app-1")


def test_the_admin_login_is_refused_as_the_workers_login(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="their own login"):
        grant_sink_role(settings(tmp_path, "pw", user="changefeed"), "public")


def test_worker_tables_are_the_mapped_tombstone_and_control_tables_of_that_schema() -> None:
    tables = worker_tables([*shipping_mappings("s"), *shipping_mappings("other")], "s")
    assert tables == [
        "customer_directory",
        "customer_directory__cf_deleted",
        "order_view",
        "order_view__cf_deleted",
        "order_lines",
        "order_lines__cf_deleted",
        *CONTROL_TABLES,
    ]


def test_the_role_has_no_attribute_beyond_login_and_gets_one_schema() -> None:
    created = role_sql('ev"il', "SCRAM-SHA-256$x", exists=False).as_string(None)
    assert created.startswith(
        'CREATE ROLE "ev""il" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION'
    )
    assert "NOBYPASSRLS" in created
    assert role_sql("r", "v", exists=True).as_string(None).startswith('ALTER ROLE "r"')
    grants = [g.as_string(None) for g in schema_grants_sql("r", "shipping", "it_x")]
    assert grants == [
        'GRANT CONNECT ON DATABASE "shipping" TO "r"',
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        'CREATE SCHEMA IF NOT EXISTS "it_x"',
        'GRANT USAGE, CREATE ON SCHEMA "it_x" TO "r"',
    ]
