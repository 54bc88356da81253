"""Contract test for connector definitions, and loading/rendering of connectors/*.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.connect.contract import violations
from streams.connect.definitions import load_definitions, render, template_variables
from streams.errors import ConfigError
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[3]
CONNECTORS = REPO / "connectors"
GOOD = {
    "connector.class": "X",
    "database.password": "${file:/s/connect-secrets.properties:customers.password}",
}


@pytest.fixture
def variables(tmp_path: Path) -> dict[str, str]:
    settings = Settings(stack={"state_dir": tmp_path / "state"})  # type: ignore[arg-type]
    return template_variables(settings)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("database.server.name", "x"),
        ("table.whitelist", "public.t"),
        ("database.blacklist", "d"),
        ("column.whitelist", "c"),
        ("database.history.kafka.topic", "h"),
        ("database.password", "hunter2"),
        ("database.password", "${file:/p:k} trailing"),
        ("connection.password", ""),
        ("errors.tolerance", "all"),
        ("errors.tolerance", " ALL "),
    ],
)
def test_contract_rejects(key: str, value: str) -> None:
    assert violations({**GOOD, key: value})


def test_contract_accepts_placeholders_and_tolerance_none() -> None:
    config = {**GOOD, "errors.tolerance": "none", "other.password": "${env:PW}"}
    assert violations(config) == []


def test_committed_definitions_load_and_pass_the_contract(variables: dict[str, str]) -> None:
    definitions = load_definitions(CONNECTORS, variables)
    assert [d.name for d in definitions] == ["customers", "orders"]
    for definition in definitions:
        assert violations(definition.config) == []
        assert "{{" not in json.dumps(definition.config)
        assert definition.config["errors.tolerance"] == "none"
        assert definition.config["database.password"].startswith("${file:" + variables["secrets_file"])


def test_committed_json_holds_no_absolute_path_or_secret() -> None:
    for path in CONNECTORS.glob("*.json"):
        text = path.read_text()
        assert "/work/" not in text
        assert "/home/" not in text
        assert "/tmp/" not in text
        config = json.loads(text)["config"]
        for key, value in config.items():
            if key.endswith("password"):
                assert value.startswith("${file:{{secrets_file}}:"), key


def test_unknown_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown template variable"):
        render("{{nope}}", {"a": "b"}, origin="x")


def test_placeholders_are_left_for_connect() -> None:
    assert (
        render("${file:{{a}}:k} ${env:X} ${routedByValue}", {"a": "/p"})
        == "${file:/p:k} ${env:X} ${routedByValue}"
    )


def _write(directory: Path, name: str, body: object) -> None:
    (directory / f"{name}.json").write_text(json.dumps(body))


def test_loader_rejects_bad_files(tmp_path: Path, variables: dict[str, str]) -> None:
    _write(tmp_path, "a", {"name": "b", "config": {"connector.class": "X"}})
    with pytest.raises(ConfigError, match="must equal the file stem"):
        load_definitions(tmp_path, variables)
    _write(tmp_path, "a", {"name": "a", "config": {"connector.class": "X", "tasks.max": 1}})
    with pytest.raises(ConfigError, match="JSON string"):
        load_definitions(tmp_path, variables)
    _write(tmp_path, "a", {"name": "a", "config": {"connector.class": "X", "database.server.name": "x"}})
    with pytest.raises(ConfigError, match=r"topic\.prefix"):
        load_definitions(tmp_path, variables)
    with pytest.raises(ConfigError, match="no definition for zz"):
        load_definitions(tmp_path, variables, ["zz"])
