"""The repository's contracts parse, share one envelope, and diff field by field."""

from __future__ import annotations

import json
from pathlib import Path

from streams.registry.contracts import load_index, local_resolver
from streams.registry.diff import diff
from streams.registry.schema import parse

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
ENVELOPE = ["id", "type", "source", "time", "subject", "version", "position", "data"]


def test_every_contract_parses_with_its_references() -> None:
    contracts = load_index(SCHEMAS)
    resolve = local_resolver(contracts)
    assert len(contracts) == 8
    for contract in contracts:
        parse(contract.source(lambda _: 1), resolve)


def test_events_share_the_envelope_and_follow_topic_record_naming() -> None:
    for contract in load_index(SCHEMAS)[1:]:
        schema = json.loads(contract.text)
        full_name = f"{schema['namespace']}.{schema['name']}"
        domain = schema["namespace"].rsplit(".", 1)[1]
        assert contract.subject == f"domain.{domain}-{full_name}"
        assert [f["name"] for f in schema["fields"]] == ENVELOPE
        assert schema["namespace"].startswith("dev.changefeed.")
        assert schema["doc"]
        assert all(f.get("doc") for f in schema["fields"])


def test_diff_field_by_field() -> None:
    old = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "a", "type": "int"},
            {"name": "gone", "type": "string"},
            {
                "name": "data",
                "type": {"type": "record", "name": "D", "fields": [{"name": "x", "type": "int"}]},
            },
        ],
    }
    new = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "a", "type": "long", "doc": "now long"},
            {
                "name": "data",
                "type": {
                    "type": "record",
                    "name": "D",
                    "fields": [
                        {"name": "x", "type": "int"},
                        {"name": "y", "type": ["null", "string"], "default": None},
                    ],
                },
            },
        ],
    }
    changes = {(c.path, c.change): (c.old, c.new) for c in diff(old, new)}
    assert changes == {
        ("a", "type"): ("int", "long"),
        ("a", "doc"): ("", "now long"),
        ("gone", "removed"): ("string", ""),
        ("data.y", "added"): ("", "null | string = null"),
    }
