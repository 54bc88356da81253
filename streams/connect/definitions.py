"""Load connector definitions from ``connectors/*.json``: one file per connector, stem = name.

Files are in Kafka Connect's own shape (``{"name": ..., "config": {...}}``). Machine-specific
values are written as ``{{variable}}`` and rendered at load time, so the committed JSON holds no
absolute path and no secret. Config-provider placeholders (``${file:...}``, ``${env:...}``) are
left untouched: Connect resolves them inside the worker. Variables:

    {{state_dir}}                 absolute local-stack state directory
    {{secrets_file}}              {{state_dir}}/secrets/connect-secrets.properties
    {{kafka_bootstrap_servers}}   host:port of the broker
    {{registry_url}}              schema registry base URL
    {{source_postgres_host}} {{source_postgres_port}} {{source_postgres_database}}
    {{source_mariadb_host}}  {{source_mariadb_port}}  {{source_mariadb_database}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.connect.contract import violations
from streams.errors import ConfigError
from streams.settings import Settings

SECRETS_RELATIVE = Path("secrets") / "connect-secrets.properties"
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class ConnectorDefinition:
    """A desired connector: its name, rendered config, and the file it came from."""

    name: str
    config: dict[str, str]
    path: Path

    @property
    def connector_class(self) -> str:
        return self.config["connector.class"]


def secrets_file(settings: Settings) -> Path:
    return settings.stack.state_dir.resolve() / SECRETS_RELATIVE


def template_variables(settings: Settings) -> dict[str, str]:
    """The values ``{{...}}`` may refer to, all derived from settings."""
    pg, maria = settings.source_postgres, settings.source_mariadb
    return {
        "state_dir": str(settings.stack.state_dir.resolve()),
        "secrets_file": str(secrets_file(settings)),
        "kafka_bootstrap_servers": settings.kafka.bootstrap_servers,
        "registry_url": settings.registry.url,
        "source_postgres_host": pg.host,
        "source_postgres_port": str(pg.port),
        "source_postgres_database": pg.database,
        "source_mariadb_host": maria.host,
        "source_mariadb_port": str(maria.port),
        "source_mariadb_database": maria.database,
    }


def render(text: str, variables: Mapping[str, str], *, origin: str = "") -> str:
    """Replace every ``{{name}}``; an unknown name is an error, never left half-rendered."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in variables:
            msg = f"{origin}: unknown template variable {{{{{key}}}}} (known: {', '.join(sorted(variables))})"
            raise ConfigError(msg)
        return variables[key]

    return _VARIABLE.sub(substitute, text)


def parse_definition(path: Path, variables: Mapping[str, str]) -> ConnectorDefinition:
    """Read one file, check its shape and the contract, render its variables."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"{path}: cannot read connector definition: {exc}"
        raise ConfigError(msg) from exc
    config = raw.get("config") if isinstance(raw, dict) else None
    if not isinstance(config, dict) or "connector.class" not in config:
        msg = f'{path}: expected {{"name": ..., "config": {{"connector.class": ...}}}}'
        raise ConfigError(msg)
    if raw.get("name", path.stem) != path.stem:
        msg = f"{path}: name {raw['name']!r} must equal the file stem {path.stem!r}"
        raise ConfigError(msg)
    if not all(isinstance(v, str) for v in config.values()):
        msg = f"{path}: every config value must be a JSON string, as Connect stores them"
        raise ConfigError(msg)
    rendered = {key: render(value, variables, origin=f"{path}:{key}") for key, value in config.items()}
    problems = violations(rendered)
    if problems:
        msg = f"{path}: " + "; ".join(problems)
        raise ConfigError(msg)
    return ConnectorDefinition(name=path.stem, config=rendered, path=path)


def load_definitions(
    directory: Path, variables: Mapping[str, str], names: Sequence[str] = ()
) -> list[ConnectorDefinition]:
    """All definitions in ``directory`` (or just ``names``), sorted by name."""
    paths = sorted(directory.glob("*.json"))
    known = {p.stem: p for p in paths}
    missing = [n for n in names if n not in known]
    if missing:
        msg = f"no definition for {', '.join(missing)} in {directory} (have: {', '.join(known) or 'none'})"
        raise ConfigError(msg)
    chosen = [known[n] for n in names] if names else paths
    return [parse_definition(p, variables) for p in chosen]
