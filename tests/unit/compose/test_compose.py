"""compose/docker-compose.yml is valid and in step with the local stack (it cannot run here).

Validity is what Debian's ``docker-compose`` 1.29 says (``config -q``). For the structural checks
the file is read as ``docker-compose config`` resolves it (anchors merged), converted to JSON by
the Python interpreter docker-compose itself runs on: it always has PyYAML, our venv does not.
Skipped, with the reason, where the binary is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings
from streams.stack import configs
from streams.stack.paths import StackPaths, repo_root

COMPOSE_FILE = repo_root() / "compose" / "docker-compose.yml"
SERVICES = {
    "kafka",
    "connect",
    "registry",
    "source-postgres",
    "sink-postgres",
    "mariadb",
    "nats",
    "redis",
    "worker",
}
YAML_TO_JSON = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"


def _defaults() -> Settings:
    """The documented defaults: the compose file mirrors them, whatever this shell exports."""
    return Settings.model_construct()  # field defaults only: no env, no TOML


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install docker-compose)")
    return found


def _run(*args: str, stdin: str | None = None) -> str:
    # Pure file processing; 60 s only guards against a hung binary.
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    binary = _docker_compose()
    resolved = _run(binary, "-f", str(COMPOSE_FILE), "config")
    interpreter = Path(binary).read_text(errors="replace").splitlines()[0].removeprefix("#!").split()
    if not interpreter or "python" not in interpreter[-1]:
        pytest.skip(f"{binary} is not a Python script; cannot borrow its YAML parser")
    parsed: dict[str, Any] = json.loads(_run(*interpreter, "-c", YAML_TO_JSON, stdin=resolved))
    return parsed


def test_config_is_valid() -> None:
    _run(_docker_compose(), "-f", str(COMPOSE_FILE), "config", "-q")


def test_every_service_has_a_healthcheck_and_waits_for_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, how in service.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"}, f"{name} → {dependency}: {how}"
    assert set(services["worker"]["depends_on"]) == SERVICES - {"worker"}


def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """container port → (host ip, host port), from short (``ip:host:container``) or long syntax."""
    out: dict[int, tuple[str, int]] = {}
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out[int(port["target"])] = (port.get("host_ip", ""), int(port["published"]))
            continue
        parts = str(port).removesuffix("/tcp").split(":")
        host_ip = parts[0] if len(parts) == 3 else ""  # ip:host:container
        out[int(parts[-1])] = (host_ip, int(parts[-2]))
    return out


def test_ports_match_the_settings_defaults_and_stay_on_loopback(compose: dict[str, Any]) -> None:
    s, services = _defaults(), compose["services"]
    expected = {
        "kafka": (9092, s.kafka.port),
        "connect": (8083, s.connect.port),
        "registry": (s.registry.port, s.registry.port),
        "source-postgres": (5432, s.source_postgres.port),
        "sink-postgres": (5432, s.sink_postgres.port),
        "mariadb": (3306, s.source_mariadb.port),
        "nats": (4222, s.bus.nats.port),
        "redis": (6379, s.bus.redis.port),
    }
    for name, (container, host) in expected.items():
        assert _published(services[name]) == {container: ("127.0.0.1", host)}, name


def test_database_names_and_logins_match_the_settings(compose: dict[str, Any]) -> None:
    s, services = _defaults(), compose["services"]
    for name, db in (("source-postgres", s.source_postgres), ("sink-postgres", s.sink_postgres)):
        env = services[name]["environment"]
        assert (env["POSTGRES_DB"], env["POSTGRES_USER"]) == (db.database, db.user)
        assert "POSTGRES_PASSWORD" not in env  # only the _FILE form: secrets stay in files
    maria = services["mariadb"]["environment"]
    assert (maria["MARIADB_DATABASE"], maria["MARIADB_USER"]) == (
        s.source_mariadb.database,
        s.source_mariadb.user,
    )
    worker = services["worker"]["environment"]
    assert worker["CHANGEFEED_SOURCE_POSTGRES__DATABASE"] == s.source_postgres.database
    assert worker["CHANGEFEED_SINK_POSTGRES__DATABASE"] == s.sink_postgres.database
    assert worker["CHANGEFEED_SOURCE_MARIADB__DATABASE"] == s.source_mariadb.database
    assert worker["CHANGEFEED_REGISTRY__TOPIC"] == s.registry.topic


def test_no_plaintext_password_anywhere(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key.upper():
                assert key.endswith("_FILE"), f"{name}: {key}"
                assert str(value).startswith("/run/secrets/"), f"{name}: {key}"
    assert set(compose["secrets"]) >= {
        "connect_secrets",
        "source_postgres_password",
        "sink_postgres_password",
    }


_HOST_SPECIFIC = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}


def test_kafka_settings_match_the_local_stack(compose: dict[str, Any]) -> None:
    s = _defaults()
    rendered = configs.kafka_server_properties(s.kafka, StackPaths(Path("/s"), Path("/c")))
    env = compose["services"]["kafka"]["environment"]
    for key, value in rendered.items():
        if key in _HOST_SPECIFIC or key in {"inter.broker.listener.name", "listener.security.protocol.map"}:
            continue  # the container adds an INTERNAL listener for other containers
        assert env.get("KAFKA_" + key.upper().replace(".", "_")) == value, key


# Debezium's image sets these from its own variables instead of CONNECT_<KEY>.
_DEBEZIUM_VARIABLES = {
    "bootstrap.servers": "BOOTSTRAP_SERVERS",
    "group.id": "GROUP_ID",
    "config.storage.topic": "CONFIG_STORAGE_TOPIC",
    "offset.storage.topic": "OFFSET_STORAGE_TOPIC",
    "status.storage.topic": "STATUS_STORAGE_TOPIC",
    "key.converter": "KEY_CONVERTER",
    "value.converter": "VALUE_CONVERTER",
}
_CONNECT_HOST_SPECIFIC = {
    "bootstrap.servers", "listeners", "rest.advertised.host.name", "rest.advertised.port", "plugin.path",
    "schema.registry.url",
}  # fmt: skip


def test_connect_settings_match_the_local_stack(compose: dict[str, Any]) -> None:
    s = _defaults()
    rendered = configs.connect_worker_properties(
        s.connect, s.kafka, s.registry, StackPaths(Path("/s"), Path("/c"))
    )
    env = compose["services"]["connect"]["environment"]
    for key, value in rendered.items():
        name = _DEBEZIUM_VARIABLES.get(key, "CONNECT_" + key.upper().replace(".", "_"))
        if key in _CONNECT_HOST_SPECIFIC:
            continue
        assert env.get(name) == value, key
    assert env["BOOTSTRAP_SERVERS"] == "kafka:29092"
    assert env["CONNECT_SCHEMA_REGISTRY_URL"] == f"http://registry:{s.registry.port}"


def test_source_databases_are_set_up_for_capture(compose: dict[str, Any]) -> None:
    pg_flags = configs.postgres_flags(5432, Path("/run"), logical=True)
    wanted = {
        f for f in pg_flags if f.startswith(("wal_level=", "max_replication_slots=", "max_wal_senders="))
    }
    assert wanted <= set(compose["services"]["source-postgres"]["command"])
    assert "wal_level=logical" not in compose["services"]["sink-postgres"]["command"]
    maria_flags = configs.mariadb_flags(3306, Path("/d"), Path("/s"), Path("/i"), None)
    binlog = {
        f for f in maria_flags if f.startswith(("--binlog-", "--gtid-", "--log-slave-updates", "--server-id"))
    }
    assert binlog <= set(compose["services"]["mariadb"]["command"])


def test_the_worker_healthcheck_probes_a_port_the_worker_listens_on(compose: dict[str, Any]) -> None:
    """It probed Faust's web port (worker.web_port, 6066), which nothing in the worker opens."""
    probe = " ".join(compose["services"]["worker"]["healthcheck"]["test"])
    assert f"'localhost', {_defaults().worker.metrics_port})" in probe


def test_the_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    """README's scale-out: ``up --scale worker=N`` needs a worker with no fixed container name and
    no host port (N containers cannot share either)."""
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert not _published(worker)
