"""Which sources a project has, for waits: per connector its kind, server id and the change topics
of the sink tables it feeds (only declared tables count; outbox and domain topics feed no table)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
import pymysql

from streams.connect.definitions import ConnectorDefinition, load_definitions, template_variables
from streams.consistency.token import Kind
from streams.project import load_project
from streams.settings import Settings
from streams.sinks import conninfo_from

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    name: str  # the connector's name: what tokens carry
    kind: Kind
    topics: tuple[str, ...]  # change topics of the declared sink tables it feeds
    server_id: int | None  # None: unknown (the database was unreachable), any token's id accepted


def kind_of(definition: ConnectorDefinition) -> Kind | None:
    cls = definition.connector_class.lower()
    if "postgres" in cls:
        return Kind.POSTGRES
    if "mariadb" in cls or "mysql" in cls:
        return Kind.MARIADB
    return None


def server_id_of(settings: Settings, definition: ConnectorDefinition, kind: Kind) -> int | None:
    """The database the connector reads, asked with the admin login of its kind."""
    c = definition.config
    try:
        if kind is Kind.POSTGRES:
            db = settings.source_postgres.model_copy(
                update={
                    "host": c.get("database.hostname", settings.source_postgres.host),
                    "port": int(c.get("database.port", settings.source_postgres.port)),
                    "database": c.get("database.dbname", settings.source_postgres.database),
                }
            )
            with psycopg.connect(conninfo_from(db, application_name="changefeed-serve")) as conn:
                row = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()
            return None if row is None else int(row[0])
        m = settings.source_mariadb
        conn = pymysql.connect(
            host=c.get("database.hostname", m.host),
            port=int(c.get("database.port", m.port)),
            user=m.user,
            password=m.password.get_secret_value(),
            connect_timeout=5,
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@server_id")
                return int(cur.fetchone()[0])
        finally:
            conn.close()
    except (psycopg.Error, pymysql.MySQLError, OSError) as exc:
        log.warning(
            "source %s: server id unknown (%s); tokens of any server id accepted", definition.name, exc
        )
        return None


def project_sources(settings: Settings, *, ask_servers: bool = True) -> dict[str, Source]:
    project = load_project(settings)
    p = settings.project
    definitions = (
        load_definitions(p.connectors_dir, template_variables(settings)) if p.connectors_dir.is_dir() else []
    )
    declared = {t.source for t in project.file.tables}
    out: dict[str, Source] = {}
    for d in definitions:
        kind = kind_of(d)
        prefix = d.config.get("topic.prefix")
        if kind is None or prefix is None:
            continue
        topics = tuple(
            sorted(t for s, t in project.topics.items() if s in declared and t.startswith(prefix + "."))
        )
        server_id = server_id_of(settings, d, kind) if ask_servers else None
        out[d.name] = Source(d.name, kind, topics, server_id)
    return out
