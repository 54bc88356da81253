"""The local stack's services: how each is prepared, started, probed and stopped."""

from __future__ import annotations

import base64
import importlib.util
import os
import pwd
import shutil
import signal
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from streams.errors import StackError
from streams.settings import DatabaseSettings, Settings
from streams.stack import configs, health
from streams.stack.jvm import classpath
from streams.stack.paths import StackPaths
from streams.stack.process import run_once


@dataclass(frozen=True)
class StackContext:
    settings: Settings
    paths: StackPaths

    @property
    def marker(self) -> str:
        """Every process we start has the state directory in its command line."""
        return str(self.paths.state)


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    prepare: Callable[[StackContext], None]
    argv: Callable[[StackContext], list[str]]
    ready: Callable[[StackContext], bool]
    depends_on: tuple[str, ...] = ()
    after_ready: Callable[[StackContext], None] | None = None
    run_as: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    env: Callable[[StackContext], dict[str, str]] | None = None


def os_user_for(package_user: str) -> str | None:
    """Databases refuse to run as root: as root, run them as their Debian package's user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(package_user)
    except KeyError as exc:
        msg = f"running as root needs the OS user {package_user!r} (created by its Debian package)"
        raise StackError(msg) from exc
    return package_user


def _own(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for item in [path, *path.rglob("*")]:
        os.chown(item, entry.pw_uid, entry.pw_gid)


def postgres_bin(tool: str) -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), key=lambda p: int(p.parent.parent.name)
    )
    if not candidates:
        msg = "PostgreSQL server binaries not found: apt-get install postgresql"
        raise StackError(msg)
    return candidates[-1]


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        msg = "java not found: apt-get install openjdk-17-jre-headless"
        raise StackError(msg)
    return java


# --- Kafka -----------------------------------------------------------------------------------


def _kafka_files(ctx: StackContext) -> tuple[Path, Path]:
    conf = ctx.paths.conf("kafka")
    return conf / "server.properties", conf / "log4j2.properties"


def new_cluster_id() -> str:
    """A random KRaft cluster id that never starts with '-'.

    Kafka's own Uuid.randomUuid() redraws such ids too: an id like "-4Jq..." given after `-t`
    is parsed as an option and `kafka-storage format` fails (1 fresh start in 64 did).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _kafka_prepare(ctx: StackContext) -> None:
    props, log4j = _kafka_files(ctx)
    props.parent.mkdir(parents=True, exist_ok=True)
    props.write_text(
        configs.render_properties(configs.kafka_server_properties(ctx.settings.kafka, ctx.paths))
    )
    log4j.write_text(configs.LOG4J2_PROPERTIES)
    if (ctx.paths.data("kafka") / "meta.properties").is_file():
        return
    run_once(
        [_java(), *configs.jvm_flags(256, log4j, ctx.paths.logs),
         "-cp", classpath(ctx.paths.kafka_libs), "kafka.tools.StorageTool",
         "format", f"--cluster-id={new_cluster_id()}", "-c", str(props)],
        log_file=ctx.paths.log_file("kafka"),
    )  # fmt: skip


def _kafka_argv(ctx: StackContext) -> list[str]:
    props, log4j = _kafka_files(ctx)
    heap = ctx.settings.stack.kafka_heap_mb
    return [_java(), *configs.jvm_flags(heap, log4j, ctx.paths.logs),
            "-cp", classpath(ctx.paths.kafka_libs), "kafka.Kafka", str(props)]  # fmt: skip


# --- Kafka Connect ---------------------------------------------------------------------------


def _connect_files(ctx: StackContext) -> tuple[Path, Path]:
    conf = ctx.paths.conf("connect")
    return conf / "connect-distributed.properties", conf / "log4j2.properties"


def _connect_prepare(ctx: StackContext) -> None:
    props, log4j = _connect_files(ctx)
    props.parent.mkdir(parents=True, exist_ok=True)
    s = ctx.settings
    values = configs.connect_worker_properties(s.connect, s.kafka, s.registry, ctx.paths)
    props.write_text(configs.render_properties(values))
    log4j.write_text(configs.LOG4J2_PROPERTIES)


def _connect_argv(ctx: StackContext) -> list[str]:
    props, log4j = _connect_files(ctx)
    heap = ctx.settings.stack.connect_heap_mb
    return [_java(), *configs.jvm_flags(heap, log4j, ctx.paths.logs),
            "-cp", classpath(ctx.paths.kafka_libs),
            "org.apache.kafka.connect.cli.ConnectDistributed", str(props)]  # fmt: skip


# --- PostgreSQL ------------------------------------------------------------------------------


def _postgres_prepare(name: str, db: DatabaseSettings) -> Callable[[StackContext], None]:
    def prepare(ctx: StackContext) -> None:
        user = os_user_for("postgres")
        data, sockets = ctx.paths.data(name), ctx.paths.socket_dir(name)
        sockets.mkdir(parents=True, exist_ok=True)
        _own(sockets, user)
        if (data / "PG_VERSION").is_file():
            return
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        pwfile = ctx.paths.conf(name) / "initdb.pw"
        pwfile.parent.mkdir(parents=True, exist_ok=True)
        pwfile.write_text(db.password.get_secret_value() + "\n")
        pwfile.chmod(0o600)
        _own(data, user)
        _own(pwfile.parent, user)
        try:
            run_once(
                [str(postgres_bin("initdb")), "-D", str(data), "-U", db.user, f"--pwfile={pwfile}",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                 "--locale=C.UTF-8", "--no-instructions"],
                log_file=ctx.paths.log_file(name), user=user,
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)

    return prepare


def _postgres_argv(name: str, db: DatabaseSettings, *, logical: bool) -> Callable[[StackContext], list[str]]:
    def argv(ctx: StackContext) -> list[str]:
        return [str(postgres_bin("postgres")), "-D", str(ctx.paths.data(name)),
                *configs.postgres_flags(db.port, ctx.paths.socket_dir(name), logical=logical)]  # fmt: skip

    return argv


def _postgres_create_database(db: DatabaseSettings) -> Callable[[StackContext], None]:
    def after_ready(ctx: StackContext) -> None:
        with psycopg.connect(
            host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
            dbname="postgres", autocommit=True,
        ) as conn:  # fmt: skip
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db.database,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db.database)))

    return after_ready


# --- MariaDB ---------------------------------------------------------------------------------


def _mariadb_prepare(ctx: StackContext) -> None:
    db = ctx.settings.source_mariadb
    user = os_user_for("mysql")
    data, sockets, conf = (
        ctx.paths.data("mariadb"),
        ctx.paths.socket_dir("mariadb"),
        ctx.paths.conf("mariadb"),
    )
    for path in (sockets, conf):
        path.mkdir(parents=True, exist_ok=True)
    init = conf / "init.sql"
    init.write_text(configs.mariadb_init_sql(db.user, db.password.get_secret_value(), db.database))
    init.chmod(0o600)
    _own(sockets, user)
    _own(conf, user)
    if (data / "mysql").is_dir():
        return
    data.mkdir(parents=True, exist_ok=True)
    _own(data, user)
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if install is None:
        msg = "mariadb-install-db not found: apt-get install mariadb-server"
        raise StackError(msg)
    run_once(
        [install, "--no-defaults", f"--datadir={data}", "--skip-test-db",
         "--auth-root-authentication-method=socket", *([f"--user={user}"] if user else [])],
        log_file=ctx.paths.log_file("mariadb"),
    )  # fmt: skip


def _mariadb_argv(ctx: StackContext) -> list[str]:
    db = ctx.settings.source_mariadb
    mariadbd = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
    return [mariadbd, *configs.mariadb_flags(
        db.port, ctx.paths.data("mariadb"), ctx.paths.socket_dir("mariadb") / "mariadb.sock",
        ctx.paths.conf("mariadb") / "init.sql", os_user_for("mysql"),
    )]  # fmt: skip


# --- Schema registry -------------------------------------------------------------------------


def _registry_env(ctx: StackContext) -> dict[str, str]:
    s = ctx.settings
    return {
        **os.environ,
        "CHANGEFEED_REGISTRY__HOST": s.registry.host,
        "CHANGEFEED_REGISTRY__PORT": str(s.registry.port),
        "CHANGEFEED_REGISTRY__TOPIC": s.registry.topic,
        "CHANGEFEED_KAFKA__HOST": s.kafka.host,
        "CHANGEFEED_KAFKA__PORT": str(s.kafka.port),
    }


def _registry_argv(ctx: StackContext) -> list[str]:
    # The trailing flag only marks the process as this stack's (pid checks match on it).
    return [sys.executable, "-m", "streams.registry", "--stack-state", str(ctx.paths.state)]


def _noop(ctx: StackContext) -> None:
    return None


def build_services(settings: Settings, *, every: bool = False) -> list[Service]:
    """Every service of the local stack, in start order (dependencies first); ``every`` adds the
    bus's servers even when their bridge is off (``down`` stops what an earlier ``up`` started)."""
    s = settings
    services = [
        Service("kafka", s.kafka.port, _kafka_prepare, _kafka_argv,
                lambda c: health.kafka_ready(c.settings.kafka.bootstrap_servers)),
        Service("source-postgres", s.source_postgres.port,
                _postgres_prepare("source-postgres", s.source_postgres),
                _postgres_argv("source-postgres", s.source_postgres, logical=True),
                lambda c: health.postgres_ready(c.settings.source_postgres),
                after_ready=_postgres_create_database(s.source_postgres),
                run_as=os_user_for("postgres"), stop_signal=signal.SIGINT),
        Service("sink-postgres", s.sink_postgres.port,
                _postgres_prepare("sink-postgres", s.sink_postgres),
                _postgres_argv("sink-postgres", s.sink_postgres, logical=False),
                lambda c: health.postgres_ready(c.settings.sink_postgres),
                after_ready=_postgres_create_database(s.sink_postgres),
                run_as=os_user_for("postgres"), stop_signal=signal.SIGINT),
        Service("mariadb", s.source_mariadb.port, _mariadb_prepare, _mariadb_argv,
                lambda c: health.mariadb_ready(c.settings.source_mariadb)),
        Service("connect", s.connect.port, _connect_prepare, _connect_argv,
                lambda c: health.connect_ready(c.settings.connect.url), depends_on=("kafka",)),
    ]  # fmt: skip
    if importlib.util.find_spec("streams.registry.__main__") is not None:
        services.append(Service("registry", s.registry.port, _noop, _registry_argv,
                                lambda c: health.http_ok(f"{c.settings.registry.url}/subjects"),
                                depends_on=("kafka",), env=_registry_env))  # fmt: skip
    from streams.stack.bus import bus_services  # imports Service from here

    services.extend(bus_services(settings, every=every))
    return services
