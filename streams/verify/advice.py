"""What verify tells an operator beyond equal / divergent: columns it could not compare, and the
way back when rows are missing.

A mapped column whose source column is gone (dropped or renamed at the source) cannot be
compared; the sink keeps the values it had (the workers never overwrite them with NULL, and
ledger the column in ``changefeed_source_notices``). Verify names each such column instead of
silently comparing less.

Rows missing in the sink (or different) after a schema change usually mean their changes were
dead-lettered or written while the source had another shape: re-reading the table from the
source (an incremental snapshot through the connector that captures it) brings every row back at
a newer position, so verify proposes the exact command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.cdc.topics import table_topic
from streams.connect.definitions import load_definitions, template_variables
from streams.errors import ConfigError
from streams.project.topics import captures
from streams.settings import Settings
from streams.verify.compare import TableResult


@dataclass(frozen=True)
class Capture:
    """Who captures a source table: the connector and its change topic."""

    connector: str
    topic: str


def captures_of(settings: Settings, tables: Sequence[str]) -> dict[str, Capture]:
    """The connector (from the project's connector files) that captures each of ``tables``."""
    folder = settings.project.connectors_dir
    if not folder.is_dir():
        return {}
    try:
        definitions = load_definitions(folder, template_variables(settings))
    except ConfigError:
        return {}  # advice only: a broken connector file is reported by `connectors apply`
    out = {}
    for table in tables:
        owners = [d for d in definitions if "topic.prefix" in d.config and captures(d.config, table)]
        if len(owners) == 1:
            container, _, name = table.rpartition(".")
            out[table] = Capture(
                owners[0].name, table_topic(owners[0].config["topic.prefix"], container, name)
            )
    return out


def not_compared_lines(results: Sequence[TableResult]) -> list[str]:
    lines = []
    for r in results:
        if r.derived:
            where = f" ({r.source})" if r.source else ""
            lines.append(
                f"{r.table}: NOT COMPARED: {', '.join(r.derived)} — mapped, but the source table{where}"
                " has no such column (dropped or renamed at the source); the sink keeps its last"
                " values (ledgered in changefeed_source_notices)"
            )
    return lines


def recovery_lines(results: Sequence[TableResult], owners: Mapping[str, Capture]) -> list[str]:
    """For each table with rows missing or different: how to re-read it from the source."""
    lines = []
    for r in results:
        different = r.divergent - r.missing - r.extra
        # Only rows the source has help a re-read; extra rows (a missed delete, an ignored
        # truncate) are not brought back by a snapshot.
        if r.error is not None or (r.missing == 0 and different == 0) or not r.source:
            continue
        capture = owners.get(r.source)
        what = ", ".join(
            part
            for part in (
                f"{r.missing} row(s) missing" if r.missing else "",
                f"{different} row(s) different" if different else "",
            )
            if part
        )
        if capture is None:
            lines.append(f"{r.table}: {what}; no connector file captures {r.source}")
            continue
        lines.append(
            f"{r.table}: {what}. If `changefeed lag` is 0, their changes were dead-lettered or"
            f" captured while the source had another shape (`changefeed dlq show {capture.topic}`);"
            f" once the source is right again, re-read the table: `changefeed connectors snapshot"
            f" {capture.connector} {r.source}`, then `changefeed verify --wait 120`"
        )
    return lines


def ignored_truncate_lines(results: Sequence[TableResult], ignored: Sequence[Mapping[str, Any]]) -> list[str]:
    """Tables that keep rows on purpose (``truncate = "ignore"``): why they have rows the source lacks.

    ``ignored``: ``truncate_ignored`` rows of the notice ledger (``notices.load_notices``).
    """
    by_table: dict[str, int] = {}
    for n in ignored:
        table = str(n["sink_table"]).rpartition(".")[2]
        by_table[table] = by_table.get(table, 0) + 1
    return [
        f'{r.table}: {by_table[r.table]} source TRUNCATE(s) ignored on purpose (truncate = "ignore");'
        " rows the source no longer has are kept (changefeed_source_notices)"
        for r in results
        if not r.ok and r.table in by_table
    ]
