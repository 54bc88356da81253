"""``changefeed schemas register | check | list | diff`` against a real registry process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.registry.process import RegistryProcess

pytestmark = pytest.mark.integration
SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def run(registry: RegistryProcess, *args: str) -> tuple[int, str]:
    env = {"CHANGEFEED_REGISTRY__PORT": str(registry.port), "COLUMNS": "250"}
    result = CliRunner().invoke(app, ["schemas", *args], env=env)
    return result.exit_code, result.output


def test_register_check_and_a_breaking_change(registry: RegistryProcess, tmp_path: Path) -> None:
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    code, out = run(registry, "register", "--dir", str(root))
    assert code == 0, out
    code, out = run(registry, "check", "--dir", str(root))
    assert code == 0, out
    code, out = run(registry, "list", "--dir", str(root))
    assert code == 0, out
    assert "up to date" in out

    deleted = root / "customers" / "CustomerDeleted.avsc"
    schema = json.loads(deleted.read_text())
    schema["fields"][-1]["type"]["fields"].append({"name": "erased", "type": "boolean"})
    deleted.write_text(json.dumps(schema))
    code, out = run(registry, "check", "--dir", str(root))
    assert code == 1, out
    assert "FAIL" in out
    assert "erased" in out
    code, out = run(
        registry,
        "diff",
        "--dir",
        str(root),
        "-s",
        "domain.customers-dev.changefeed.customers.CustomerDeleted",
    )
    assert code == 0, out
    assert "data.erased" in out
    assert "added" in out
