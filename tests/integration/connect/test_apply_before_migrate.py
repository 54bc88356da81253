"""`connectors apply` before `services migrate`: say what to run, not Connect's opaque 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("command", [["apply", "--dry-run"], ["validate"]])
def test_apply_without_the_secrets_file_says_to_migrate_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    # A state directory where `services migrate` never ran: no secrets file. --dry-run and
    # validate create nothing on the shared Connect even where the check is missing.
    monkeypatch.setenv("CHANGEFEED_STACK__STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["connectors", *command, "--dir", str(REPO / "connectors")])
    assert result.exit_code == 1
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "changefeed services migrate" in output
    assert str(tmp_path / "secrets" / "connect-secrets.properties") in "".join(output.split())
    assert "answered 500" not in output
