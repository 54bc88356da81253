"""Pure renderers of the services' configuration files and command-line flags.

Every value here is a choice for a single-node stack on a small machine; each non-default one
says why. Rendering is pure so it is unit-tested without starting anything.
"""

from __future__ import annotations

from pathlib import Path

from streams.settings import ConnectSettings, KafkaSettings, RegistrySettings
from streams.stack.paths import StackPaths


def render_properties(values: dict[str, str]) -> str:
    """Java .properties text; values are written verbatim (no escaping needed for ours)."""
    return "".join(f"{key}={value}\n" for key, value in values.items())


def kafka_server_properties(kafka: KafkaSettings, paths: StackPaths) -> dict[str, str]:
    listener = f"PLAINTEXT://{kafka.host}:{kafka.port}"
    return {
        # KRaft combined mode: one process is broker and controller.
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{kafka.host}:{kafka.controller_port}",
        "listeners": f"{listener},CONTROLLER://{kafka.host}:{kafka.controller_port}",
        "advertised.listeners": listener,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(paths.data("kafka")),
        "num.partitions": str(kafka.default_partitions),
        # One node: internal topics cannot have more replicas than brokers.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # Topics are created deliberately (Connect topic creation, our admin code), never by typo.
        "auto.create.topics.enable": "false",
        # No point waiting for more group members on a dev box; speeds up worker restarts.
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
        # Rows with a few MiB of text (JSON, TOASTed columns) must not fail Debezium's task.
        # KafkaSettings.max_message_bytes: the one value broker, Connect and workers share.
        "message.max.bytes": str(kafka.max_message_bytes),
    }


def connect_worker_properties(
    connect: ConnectSettings, kafka: KafkaSettings, registry: RegistrySettings, paths: StackPaths
) -> dict[str, str]:
    return {
        "bootstrap.servers": kafka.bootstrap_servers,
        "group.id": connect.group_id,
        "listeners": f"http://{connect.host}:{connect.port}",
        "rest.advertised.host.name": connect.host,
        "rest.advertised.port": str(connect.port),
        "plugin.path": str(paths.plugins),
        # Plugins found by their ServiceLoader manifests, not by scanning every class (12 s of a
        # 14-s start); the one plugin without manifests gets a jar of them (stack/jvm.py).
        "plugin.discovery": "service_load",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "config.storage.topic": "_connect-configs",
        "offset.storage.topic": "_connect-offsets",
        "status.storage.topic": "_connect-status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        # Default 60 s: after a worker crash every event since the last flush is re-sent.
        "offset.flush.interval.ms": str(connect.offset_flush_interval_ms),
        # Default 300 s keeps a dead worker's tasks unassigned for five minutes.
        "scheduled.rebalance.max.delay.ms": str(connect.scheduled_rebalance_max_delay_ms),
        # Source connectors' producers may send what the broker accepts (message.max.bytes).
        "producer.max.request.size": str(kafka.max_message_bytes),
        # Connectors create their own topics with explicit settings (auto creation is off).
        "topic.creation.enable": "true",
        # Secrets come from files/env through config providers, never inline in configs.
        "config.providers": "file,env",
        "config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        # Connectors may not override the worker's Kafka client settings.
        "connector.client.config.override.policy": "None",
        # Hint for clients that read the worker config; converters are set per connector.
        "schema.registry.url": registry.url,
    }


LOG4J2_PROPERTIES = """\
# Everything to stdout; the stack redirects each service's stdout to its own log file.
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
"""


def jvm_flags(heap_mb: int, log4j_config: Path, logs: Path) -> list[str]:
    return [
        f"-Xms{min(heap_mb, 256)}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile=file:{log4j_config}",
        f"-Dkafka.logs.dir={logs}",
    ]


def postgres_flags(port: int, socket_dir: Path, *, logical: bool) -> list[str]:
    """Server settings as `-c` flags, so the data directory stays exactly what initdb made."""
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(socket_dir),
        # The source is decoded by Debezium; the sink never is (its own writes must not loop).
        "wal_level": "logical" if logical else "replica",
        "max_replication_slots": "10" if logical else "0",
        "max_wal_senders": "10" if logical else "0",
        "shared_buffers": "128MB",
        "max_connections": "100",
        "log_destination": "stderr",
        "logging_collector": "off",
        "log_line_prefix": "%m [%p] ",
        "timezone": "UTC",
    }
    flags: list[str] = []
    for key, value in settings.items():
        flags += ["-c", f"{key}={value}"]
    return flags


def mariadb_flags(port: int, data: Path, socket: Path, init_file: Path, user: str | None) -> list[str]:
    flags = [
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={socket}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--pid-file={data}/mariadbd.pid",
        f"--init-file={init_file}",
        "--skip-name-resolve",
        # Debezium's binlog reader needs row events with full images, and GTIDs to resume.
        "--server-id=1",
        f"--log-bin={data}/mariadb-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--gtid-strict-mode=ON",
        "--log-slave-updates=ON",
        "--binlog-expire-logs-seconds=604800",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--default-time-zone=+00:00",
        "--innodb-buffer-pool-size=128M",
        "--max-connections=200",
    ]
    if user:
        flags.append(f"--user={user}")
    return flags


def mariadb_init_sql(user: str, password: str, database: str) -> str:
    """Run by mariadbd at every start (--init-file): idempotent admin login and database.

    Values are single-quoted SQL literals; the caller has already validated them (see
    `check_sql_literal`), since --init-file cannot take bound parameters.
    """
    for value in (user, password, database):
        check_sql_literal(value)
    return (
        f"CREATE DATABASE IF NOT EXISTS `{database}`;\n"
        f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
        f"CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{password}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1' WITH GRANT OPTION;\n"
        f"GRANT ALL PRIVILEGES ON *.* TO '{user}'@'localhost' WITH GRANT OPTION;\n"
    )


def check_sql_literal(value: str) -> None:
    from streams.errors import ConfigError

    if not value or any(ch in value for ch in "'\\`\"\x00\n\r;"):
        msg = f"{value!r} cannot be used as a MariaDB admin name/password/database (quotes, ; or NUL)"
        raise ConfigError(msg)
