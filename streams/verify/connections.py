"""Read-only connections verify and lag use, from the settings' admin logins.

MariaDB sessions run in UTC (``TIMESTAMP`` values are then instants) with ``utf8mb4`` so
``MD5()`` hashes the same UTF-8 bytes PostgreSQL does.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pymysql

from streams.settings import DatabaseSettings


def postgres(db: DatabaseSettings, application: str = "changefeed-verify") -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
        dbname=db.database, application_name=application, connect_timeout=5,
    )  # fmt: skip


def mariadb(db: DatabaseSettings) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
        database=db.database, charset="utf8mb4", autocommit=False, connect_timeout=5,
        init_command="SET time_zone = '+00:00'",
    )  # fmt: skip
