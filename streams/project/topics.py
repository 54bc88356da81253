"""Which change topic carries a declared source table: derived from the connector definitions.

Debezium names a table's change topic ``<topic.prefix>.<schema or database>.<table>``; the
connector that captures a table is the one whose ``table.include.list`` (regular expressions,
matched against the whole ``schema.table``) names it — or, without an include list, the one whose
database or ``database.include.list`` holds it. A table no connector captures, or that two
connectors capture, is a configuration error that says what to set (``topic`` on the table).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from streams.cdc.topics import table_topic
from streams.connect.definitions import ConnectorDefinition
from streams.errors import ConfigError


def _listed(patterns: str, name: str) -> bool:
    return any(re.fullmatch(p.strip(), name) for p in patterns.split(",") if p.strip())


def captures(config: dict[str, str], table_id: str) -> bool:
    """Whether a connector with ``config`` captures ``table_id`` (``schema.table``)."""
    container = table_id.rpartition(".")[0]
    if "table.exclude.list" in config and _listed(config["table.exclude.list"], table_id):
        return False
    if "table.include.list" in config:
        return _listed(config["table.include.list"], table_id)
    if "database.include.list" in config:
        return _listed(config["database.include.list"], container)
    return True


def topic_of(table_id: str, definitions: Sequence[ConnectorDefinition]) -> str:
    owners = [d for d in definitions if "topic.prefix" in d.config and captures(d.config, table_id)]
    if len(owners) != 1:
        names = ", ".join(d.name for d in owners) or "none"
        msg = (
            f"source table {table_id!r}: {len(owners)} connectors capture it ({names}); add it to one"
            ' connector\'s table.include.list, or set topic = "..." on the table in the tables file'
        )
        raise ConfigError(msg)
    schema, _, table = table_id.rpartition(".")
    return table_topic(owners[0].config["topic.prefix"], schema, table)


def topics_of(tables: Iterable[str], definitions: Sequence[ConnectorDefinition]) -> dict[str, str]:
    return {t: topic_of(t, definitions) for t in tables}
