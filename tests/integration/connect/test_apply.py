"""connectors apply against the real Connect worker: create, no-op, one-property update, rejection."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.connect.apply import Action, apply_definition
from streams.connect.client import ConnectClient
from streams.connect.definitions import ConnectorDefinition
from streams.errors import ConnectRequestError, ConnectValidationError
from tests.integration.connect.connect_it_helpers import write_definition
from tests.polling import poll

pytestmark = pytest.mark.integration


def test_apply_creates_both_connectors_running_and_second_apply_is_a_no_op(
    client: ConnectClient, definitions: dict[str, ConnectorDefinition]
) -> None:
    first = {name: apply_definition(client, d) for name, d in definitions.items()}
    for result in first.values():
        assert result.status is not None
        assert result.status.running, result.status
    second = [apply_definition(client, d) for d in definitions.values()]
    assert {r.action for r in second} == {Action.UNCHANGED}


def test_gtid_offsets_and_infinite_schema_history(
    client: ConnectClient, definitions: dict[str, ConnectorDefinition], admin: object
) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource

    apply_definition(client, definitions["orders"])

    def gtid_offsets() -> list[object]:
        offsets = client.offsets("orders")
        return offsets if any("gtids" in (o.offset or {}) for o in offsets) else []

    # On a fresh stack the first offset is flushed after the snapshot (heartbeat 10 s, flush 1 s).
    poll(gtid_offsets, 120, "an orders offset carrying gtids")
    assert isinstance(admin, AdminClient)
    topic = definitions["orders"].config["schema.history.internal.kafka.topic"]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = next(iter(admin.describe_configs([resource]).values())).result()
    assert int(configs["retention.ms"].value) in (-1, 2**63 - 1)


def test_one_property_change_updates_only_that_connector(
    client: ConnectClient, definitions: dict[str, ConnectorDefinition], unique_customers: ConnectorDefinition
) -> None:
    assert apply_definition(client, unique_customers).action is Action.CREATED
    for d in definitions.values():
        apply_definition(client, d)
    changed_config = {**unique_customers.config, "heartbeat.interval.ms": "15000"}
    changed = dataclasses.replace(unique_customers, config=changed_config)
    results = [apply_definition(client, d) for d in [changed, *definitions.values()]]
    assert [r.action for r in results] == [Action.UPDATED, Action.UNCHANGED, Action.UNCHANGED]
    assert [str(c) for c in results[0].diff.changes] == ["~ heartbeat.interval.ms: 10000 -> 15000"]
    live = client.config(unique_customers.name)
    assert live is not None
    assert live["heartbeat.interval.ms"] == "15000"


def _broken(base: ConnectorDefinition, name: str, **changes: str | None) -> ConnectorDefinition:
    config = copy.deepcopy(base.config)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return ConnectorDefinition(name, config, Path(f"{name}.json"))


@pytest.mark.parametrize(
    ("changes", "bad_property"),
    [
        ({"topic__prefix": None}, "topic.prefix"),
        ({"snapshot__mode": "bogus"}, "snapshot.mode"),
        ({"publication__autocreate__mode": "sometimes"}, "publication.autocreate.mode"),
    ],
)
@pytest.mark.scenario("B4")
def test_invalid_config_names_each_property_and_creates_nothing(
    client: ConnectClient,
    unique_customers: ConnectorDefinition,
    changes: dict[str, str | None],
    bad_property: str,
) -> None:
    broken = _broken(unique_customers, unique_customers.name, **changes)
    with pytest.raises(ConnectValidationError) as info:
        apply_definition(client, broken)
    assert any(d.startswith(f"{bad_property}:") for d in info.value.details), info.value.details
    assert client.config(broken.name) is None


@pytest.mark.scenario("B4")
def test_unknown_connector_class_is_rejected_and_creates_nothing(
    client: ConnectClient, unique_customers: ConnectorDefinition
) -> None:
    broken = _broken(unique_customers, unique_customers.name, connector__class="io.example.NoSuchConnector")
    with pytest.raises(ConnectRequestError) as info:
        apply_definition(client, broken)
    assert "NoSuchConnector" in str(info.value)
    assert client.config(broken.name) is None


@pytest.mark.scenario("B4")
def test_cli_apply_exits_non_zero_showing_each_property(
    tmp_path: Path, client: ConnectClient, unique_customers: ConnectorDefinition
) -> None:
    broken = _broken(unique_customers, unique_customers.name, topic__prefix=None, snapshot__mode="bogus")
    write_definition(tmp_path, broken)
    result = CliRunner().invoke(app, ["connectors", "apply", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "topic.prefix" in result.output
    assert "snapshot.mode" in result.output
    assert client.config(broken.name) is None


def test_cli_unreachable_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANGEFEED_CONNECT__PORT", "1")
    result = CliRunner().invoke(app, ["connectors", "status"])
    assert result.exit_code == 2
    assert "http://127.0.0.1:1" in result.output
    assert "run `changefeed up`" in result.output
