"""Schema changes and truncates of captured tables, on the real stack (fault scenarios E1, E2,
E3 of tests/faults/README.md).

Each test is a scratch project of its own (``scratch_project``): its own source tables, connector
files, tables file, sink schema and worker, so it can drop, rename and truncate freely.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.integration.project.scratch_project import ScratchProject
from tests.polling import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def project(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ScratchProject]:
    label = {"test_dropped": "drop", "test_truncat": "trunc", "test_renamed": "ren"}.get(
        request.node.name[:12], "sc"
    )
    p = ScratchProject(settings, tmp_path, label)
    try:
        yield p
    finally:
        p.close()


@pytest.mark.scenario("E2")
def test_dropped_source_column_keeps_sink_values_and_is_reported(project: ScratchProject) -> None:
    """E2: DROP COLUMN of a mapped column mid-run, then updates of the rows."""
    p = project
    s = p.pg_schema
    p.pg_tables({"people": "id bigint PRIMARY KEY, email text NOT NULL, phone text, note text"})
    p.tables_file(f'[[tables]]\nsource = "{s}.people"\nsink = "people"\n')  # mirrored
    with p.pg() as pg:
        for i in range(1, 6):
            pg.execute(
                f'INSERT INTO "{s}".people VALUES (%s, %s, %s, %s)', [i, f"p{i}@x.test", f"+49-{i}", "before"]
            )
    p.start()
    poll(lambda: len(p.sink_rows("people")) == 5, 120, "the snapshot in the sink")
    verified = p.run("verify", "--wait", "60", "--sink-schema", p.sink_schema)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    with p.pg() as pg:
        pg.execute(f'ALTER TABLE "{s}".people DROP COLUMN phone')
        pg.execute(f"UPDATE \"{s}\".people SET note = 'after' WHERE id <= 3")
        pg.execute(f"INSERT INTO \"{s}\".people VALUES (6, 'p6@x.test', 'new row')")
    poll(
        lambda: [r[0] for r in p.sink_rows("people", "id", "note = 'after'")] == [1, 2, 3],
        120,
        "the updates after the drop in the sink",
    )
    poll(lambda: len(p.sink_rows("people")) == 6, 60, "the row inserted after the drop")
    # Stored values are never overwritten with NULL because the field vanished.
    assert p.sink_rows("people", "id, phone", "id <= 5") == [(i, f"+49-{i}") for i in range(1, 6)]
    assert p.sink_rows("people", "id, phone", "id = 6") == [(6, None)]
    # Said loudly: a ledger entry per table+column, a counter, one log line per writer schema.
    notices = poll(lambda: p.notices(), 30, "the column_missing notice")
    assert notices == [(f"{p.sink_schema}.people", "column_missing", "phone", None)]
    assert poll(
        lambda: (
            p.metric(
                "changefeed_source_column_missing_total", table=f"{p.sink_schema}.people", column="phone"
            )
            >= 4
        ),
        30,
        "the missing-column counter",
    )
    assert p.log().count("has no field 'phone'") == 1, p.log()[-3000:]
    # verify still passes and says what it no longer compares.
    verified = p.run("verify", "--wait", "60", "--sink-schema", p.sink_schema)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "people: NOT COMPARED: phone" in verified.stdout, verified.stdout


TRUNCATE_TABLES = """\
[[tables]]
source = "{s}.items"
sink = "items"
key = ["id"]

[[tables]]
source = "{s}.refs"
sink = "refs"
key = ["id"]
[[tables.lookups]]
table = "items"
on = "item_id"
columns = {{ item_label = "label" }}

[[tables]]
source = "{maria_db}.{ledger}"
sink = "ledger"
delete = "soft"
"""
IGNORED_TABLE = """
[[tables]]
source = "{s}.kept"
sink = "kept"
truncate = "ignore"
"""


@pytest.mark.scenario("E1")
def test_truncate_is_applied_per_delete_policy_or_ignored_loudly(project: ScratchProject) -> None:
    """E1: TRUNCATE of captured PostgreSQL and MariaDB tables."""
    p = project
    s = p.pg_schema
    p.pg_tables(
        {
            "items": "id bigint PRIMARY KEY, label text",
            "refs": "id bigint PRIMARY KEY, item_id bigint",
            "kept": "id bigint PRIMARY KEY, label text",
        }
    )
    p.mariadb_tables({"ledger": "id INT PRIMARY KEY, label VARCHAR(50)"})
    ledger = p.maria_tables[0]
    applied = TRUNCATE_TABLES.format(s=s, maria_db=p.maria_db, ledger=ledger)
    p.tables_file(applied + IGNORED_TABLE.format(s=s))
    with p.pg() as pg:
        for i in range(1, 6):
            pg.execute(f'INSERT INTO "{s}".items VALUES (%s, %s)', [i, f"item {i}"])
        for i in range(1, 4):
            pg.execute(f'INSERT INTO "{s}".refs VALUES (%s, %s)', [i, i])
            pg.execute(f'INSERT INTO "{s}".kept VALUES (%s, %s)', [i, f"kept {i}"])
    maria = p.maria()
    with maria.cursor() as cur:
        cur.executemany(f"INSERT INTO `{ledger}` VALUES (%s, %s)", [(i, f"entry {i}") for i in range(1, 5)])
    p.start()
    poll(
        lambda: (
            len(p.sink_rows("items")) == 5
            and len(p.sink_rows("kept")) == 3
            and len(p.sink_rows("ledger")) == 4
            and p.sink_rows("refs", "id, item_label") == [(i, f"item {i}") for i in range(1, 4)]
        ),
        180,
        "the snapshots (and the lookup) in the sink",
    )

    with p.pg() as pg:
        pg.execute(f'TRUNCATE "{s}".items')
        pg.execute(f'TRUNCATE "{s}".kept')
        with pg.transaction():  # one transaction: a row before the truncate goes, one after stays
            pg.execute(f"INSERT INTO \"{s}\".items VALUES (7, 'before')")
            pg.execute(f'TRUNCATE "{s}".items')
            pg.execute(f"INSERT INTO \"{s}\".items VALUES (8, 'after')")
        pg.execute(f"INSERT INTO \"{s}\".items VALUES (10, 'later')")
    with maria.cursor() as cur:
        cur.execute(f"TRUNCATE TABLE `{ledger}`")
        cur.execute(f"INSERT INTO `{ledger}` VALUES (10, 'later')")
    maria.close()

    poll(lambda: [r[0] for r in p.sink_rows("items", "id")] == [8, 10], 120, "items truncated in the sink")
    poll(
        lambda: (
            p.sink_rows("ledger", "id, _cf_deleted_at IS NULL") == [(i, i == 10) for i in (1, 2, 3, 4, 10)]
        ),
        120,
        "the MariaDB truncate soft-deleting the ledger rows",
    )
    # Hard delete policy: removed keys are tombstoned at the truncate's position.
    assert [r[0] for r in p.sink_rows("items__cf_deleted", "id")] == [1, 2, 3, 4, 5, 7]
    # The lookup follows: refs no longer copy the label of a truncated item.
    assert p.sink_rows("refs", "id, item_label") == [(1, None), (2, None), (3, None)]
    # Ignored on purpose, loudly: rows kept, a warning, a metric, a ledger entry.
    assert len(p.sink_rows("kept")) == 3
    assert 'says truncate = "ignore"' in p.log()
    assert p.metric("changefeed_truncates_total", table=f"{p.sink_schema}.kept", action="ignored") == 1
    notices = poll(lambda: len(p.notices()) >= 4 and p.notices(), 30, "the truncate notices")
    assert sorted(n for n in notices if n[1].startswith("truncate")) == sorted(
        [
            (f"{p.sink_schema}.items", "truncate_applied", None, 5),
            (f"{p.sink_schema}.kept", "truncate_ignored", None, None),
            (f"{p.sink_schema}.items", "truncate_applied", None, 1),
            (f"{p.sink_schema}.ledger", "truncate_applied", None, 4),
        ]
    )
    assert p.metric("changefeed_truncated_rows_total", table=f"{p.sink_schema}.items") == 6
    # source ≡ sink for every table that applies truncates.
    verify_only = p.folder / "applied.toml"
    verify_only.write_text(applied)
    verified = p.run(
        "verify", "--wait", "60", "--sink-schema", p.sink_schema, CHANGEFEED_PROJECT__TABLES=str(verify_only)
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # With the ignoring table too, verify says why it keeps rows the source no longer has.
    full = p.run("verify", "--sink-schema", p.sink_schema)
    assert full.returncode == 1, full.stdout + full.stderr
    assert 'kept: 1 source TRUNCATE(s) ignored on purpose (truncate = "ignore")' in full.stdout, full.stdout
    assert "connectors snapshot" not in full.stdout  # a re-read would not remove kept rows


TRANSFORM = '''\
"""Like the demo's customers transform: a person without an email is poison."""
from streams.project import HandlerRegistry, Op, TransformError


def people_events(change):
    if change.tombstone or change.op in (Op.DELETE, Op.TRUNCATE):
        return []
    after = change.after or {{}}
    if not isinstance(after.get("email"), str):
        raise TransformError(f"person {{after.get('id')}} without an email at {{change.origin}}")
    return []


def register(registry: HandlerRegistry) -> None:
    registry.table("{table}", people_events)
'''
RENAMED_TABLES = """\
transforms = ["people_events"]

[[tables]]
source = "{s}.people"
sink = "people"
key = ["id"]
include = ["id", "email", "note"]
columns.id = {{ type = "bigint" }}
columns.email = {{ type = "text" }}
columns.note = {{ type = "text" }}
"""


@pytest.mark.scenario("E3")
def test_renamed_column_fails_loudly_and_verify_leads_back_to_equal(project: ScratchProject) -> None:
    """E3: RENAME COLUMN of a mapped column under BACKWARD, then back; the recovery README
    *Troubleshooting* documents, exactly as run here."""
    p = project
    s = p.pg_schema
    p.pg_tables({"people": "id bigint PRIMARY KEY, email text NOT NULL, note text"})
    (p.folder / "people_events.py").write_text(TRANSFORM.format(table=f"{s}.people"))
    p.tables_file(RENAMED_TABLES.format(s=s))
    with p.pg() as pg:
        for i in range(1, 6):
            pg.execute(f'INSERT INTO "{s}".people VALUES (%s, %s, %s)', [i, f"p{i}@x.test", "before"])
    p.start()
    verified = p.run("verify", "--wait", "120", "--sink-schema", p.sink_schema)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Renamed: the registry refuses the new value schema under BACKWARD and the task fails.
    with p.pg() as pg:
        pg.execute(f'ALTER TABLE "{s}".people RENAME COLUMN email TO email_address')
        for i in range(6, 11):
            pg.execute(f'INSERT INTO "{s}".people VALUES (%s, %s, %s)', [i, f"p{i}@x.test", "renamed"])
        pg.execute(f"UPDATE \"{s}\".people SET note = 'renamed' WHERE id <= 2")
    poll(lambda: "FAILED" in p.connector_state(p.pg_connector), 120, "the connector task to fail")
    # Renamed back, the task restarted: what was captured in between has no `email` field.
    with p.pg() as pg:
        pg.execute(f'ALTER TABLE "{s}".people RENAME COLUMN email_address TO email')
        pg.execute(f"INSERT INTO \"{s}\".people VALUES (11, 'p11@x.test', 'after')")
    restarted = p.run("connectors", "restart", p.pg_connector)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    poll(lambda: [r[0] for r in p.sink_rows("people", "id", "id = 11")] == [11], 120, "the row after")
    missing = p.run("verify", "--sink-schema", p.sink_schema)
    assert missing.returncode == 1, missing.stdout + missing.stderr
    hint = f"changefeed connectors snapshot {p.pg_connector} {s}.people"
    assert hint in missing.stdout, missing.stdout  # verify proposes the way back
    topic = f"{p.pg_prefix}.{s}.people"
    letters = p.run("dlq", "show", topic, "--json")  # why they are missing: the transform's dead letters
    classes = [d["error_class"] for d in json.loads(letters.stdout)]
    assert classes.count("TransformError") == 7, letters.stdout

    # The recovery: re-read the table from the source, then verify.
    snapshot = p.run(*hint.split()[1:])
    assert snapshot.returncode == 0, snapshot.stdout + snapshot.stderr
    verified = p.run("verify", "--wait", "120", "--sink-schema", p.sink_schema)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert p.sink_rows("people", "id, email, note") == [
        *((i, f"p{i}@x.test", "renamed") for i in (1, 2)),
        *((i, f"p{i}@x.test", "before") for i in (3, 4, 5)),
        *((i, f"p{i}@x.test", "renamed") for i in range(6, 11)),
        (11, "p11@x.test", "after"),
    ]
