"""A primary-key-changing UPDATE of rows with an unchanged TOASTed column, end to end.

Real Debezium (a scratch connector on a table of its own, REPLICA IDENTITY DEFAULT) turns
``UPDATE t SET id = id + 1000`` into a delete of each old key and a create of the new key whose
16 KiB ``bio`` is the unavailable-value placeholder; a real worker must carry the stored value
over to the new key (``streams.sinks.carry``), never write NULL. A second worker (another
consumer group, same sink) replaying the whole topic must leave the rows as they are; a third
into an empty sink schema reads the insert, the delete and the create in one batch and carries
the value from the batch.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from streams.codecs import AvroDecoder
from streams.load.data import LARGE_TEXT_BYTES, large_text
from streams.registry.client import RegistryClient
from streams.settings import Settings
from streams.sinks.roles import grant_sink_role
from streams.verify import VerifyOptions, open_databases, project_mappings, verify_once
from tests.integration.registry.debezium_capture import capture
from tests.integration.streams.helpers import Worker, end_offsets, stored_offsets
from tests.polling import poll

pytestmark = pytest.mark.integration
PLACEHOLDER = "__debezium_unavailable_value"
ROWS = (1, 2, 3)
TIMEOUT_S = 120.0


@pytest.fixture
def empty_schema(settings: Settings, sink: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"it_streams_{uuid.uuid4().hex[:10]}"
    sink.execute(f'CREATE SCHEMA "{name}"')
    grant_sink_role(settings, name)  # the workers' own login writes there
    yield name
    sink.execute(f'DROP SCHEMA "{name}" CASCADE')


def _bios() -> dict[int, str]:
    rng = random.Random(11)
    return {i: large_text(rng, LARGE_TEXT_BYTES) for i in ROWS}


def _setup(bios: dict[int, str]) -> list[str]:
    # STORAGE EXTERNAL: out of line and uncompressed, so every bio is TOASTed whatever its text.
    rows = ", ".join(f"({i}, 'note {i}', '{bios[i]}')" for i in ROWS)
    return [
        "CREATE TABLE {table} (id integer PRIMARY KEY, note text, bio text)",
        "ALTER TABLE {table} ALTER COLUMN bio SET STORAGE EXTERNAL",
        f"INSERT INTO {{table}} VALUES {rows}",
    ]


def _sink_rows(sink: psycopg.Connection[Any], schema: str, table: str) -> dict[int, tuple[Any, ...]]:
    try:
        rows = sink.execute(f'SELECT id, note, bio FROM "{schema}"."{table}" ORDER BY id').fetchall()
    except psycopg.errors.UndefinedTable:
        return {}
    return {int(r[0]): (r[1], r[2]) for r in rows}


def _caught_up(
    sink: psycopg.Connection[Any], settings: Settings, schema: str, group: str, topic: str
) -> bool:
    end = end_offsets(settings, topic)
    return stored_offsets(sink, schema, group, topic) == end


def test_pk_change_carries_the_unchanged_toast_value(
    settings: Settings,
    sink: psycopg.Connection[Any],
    schema: str,
    empty_schema: str,
    workers: Callable[..., Worker],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bios = _bios()
    with capture(settings, "postgres", settings.registry.url, _setup(bios)) as cap:
        cap.messages(len(ROWS), TIMEOUT_S)  # the snapshot: the slot exists, later changes stream
        tables = tmp_path / "tables.toml"
        tables.write_text(
            f'[[tables]]\nsource = "public.{cap.name}"\nsink = "{cap.name}"\ntopic = "{cap.topic}"\n'
        )
        monkeypatch.setenv("CHANGEFEED_PROJECT__TABLES", str(tables))
        app = f"it-pkchange-{uuid.uuid4().hex[:8]}"
        first = workers(app, schema, [cap.topic])
        poll(
            lambda: len(_sink_rows(sink, schema, cap.name)) == len(ROWS),
            TIMEOUT_S,
            "the snapshot in the sink",
        )

        cap.table_sql("UPDATE {table} SET id = id + 1000")

        # Debezium really sent the move as delete + create, the create without the bio.
        decoder = AvroDecoder(RegistryClient(settings.registry.url))
        moved = cap.messages(len(ROWS) * 3, TIMEOUT_S)[len(ROWS) :]
        events = [decoder.decode(m.value) for m in moved]
        creates = [e["after"] for e in events if e["op"] == "c"]
        assert sorted(a["id"] for a in creates) == [i + 1000 for i in ROWS]
        assert all(a["bio"] == PLACEHOLDER for a in creates), "the scenario needs the placeholder"
        assert sorted(e["before"]["id"] for e in events if e["op"] == "d") == list(ROWS)

        want = {i + 1000: (f"note {i}", bios[i]) for i in ROWS}
        poll(lambda: _caught_up(sink, settings, schema, app, cap.topic), TIMEOUT_S, "the worker to catch up")
        assert _sink_rows(sink, schema, cap.name) == want  # byte for byte; the old keys are gone
        assert "dead-lettering" not in first.text()

        # Replay: another group reads the whole topic into the same sink; the moved rows stay.
        replay = f"it-pkchange-replay-{uuid.uuid4().hex[:8]}"
        second = workers(replay, schema, [cap.topic])
        poll(lambda: _caught_up(sink, settings, schema, replay, cap.topic), TIMEOUT_S, "the replay")
        assert _sink_rows(sink, schema, cap.name) == want
        assert "dead-lettering" not in second.text()

        # From scratch into an empty sink: the insert (snapshot), delete and create share a batch.
        fresh = f"it-pkchange-fresh-{uuid.uuid4().hex[:8]}"
        third = workers(fresh, empty_schema, [cap.topic])
        poll(lambda: _caught_up(sink, settings, empty_schema, fresh, cap.topic), TIMEOUT_S, "the rebuild")
        assert _sink_rows(sink, empty_schema, cap.name) == want
        assert "dead-lettering" not in third.text()

        checked = settings.model_copy(
            update={"project": settings.project.model_copy(update={"tables": tables})}
        )
        with open_databases(checked) as dbs:
            results = verify_once(dbs, project_mappings(checked, schema, dbs.sink), VerifyOptions())
        assert [(r.table, r.source_rows, r.sink_rows) for r in results] == [(cap.name, 3, 3)]
        assert all(r.ok for r in results), results
