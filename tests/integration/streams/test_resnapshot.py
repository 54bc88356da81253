"""Recovery by re-snapshot on the real stack: a capture gap, changes in it, the README's steps.

For PostgreSQL and MariaDB, each on a scratch table captured by its own connector
(``scratch.py``) into a private sink schema: rows are materialized; capture loses its place
(``changefeed connectors offsets reset <name> --no-resume``, or for PostgreSQL the replication
slot dropped while the connector is stopped, then the same reset); at the source rows are updated
(the issue's tier update), deleted and inserted in the gap, and one more transaction is left open;
``changefeed connectors resume <name>``; the open transaction commits after the snapshot point.
Then verify must PASS (deletes included), and the conflict ledger must hold no refused write:
every snapshot row that was newer was applied.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from streams.settings import Settings
from streams.verify import VerifyOptions, open_databases, verify_wait
from tests.integration.streams.scratch import REPO, Scratch, ScratchPipeline, wait_snapshot_done
from tests.polling import poll

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[tuple[object, ...]]
ROWS = 40
UPDATED = [3, 4, 5]  # tier basic -> gold while capture is stopped (the reproduction)
DELETED = [10, 11, 12, 13]  # deleted while capture is stopped: only reconcile removes them
INSERTED = [ROWS + 1, ROWS + 2]
STRADDLE = 7  # updated in a transaction open across the re-snapshot's point


def changefeed(*args: str) -> None:
    """The operator's command, as the README gives it (the environment names the shared stack)."""
    done = subprocess.run([str(REPO / ".venv/bin/changefeed"), *args], cwd=REPO, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, f"changefeed {' '.join(args)}: {done.stdout}\n{done.stderr}"


# (source, how capture lost its place): an operator's offset reset, or a replication slot dropped
# while the connector was stopped (the WAL in between is gone for good).
GAPS = [("postgres", "offsets reset"), ("mariadb", "offsets reset"), ("postgres", "slot dropped")]


@pytest.fixture(params=GAPS, ids=lambda g: f"{g[0]}-{g[1].replace(' ', '-')}")
def scratch(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Scratch]:
    sc = Scratch(settings, request.param[0])
    sc.gap = request.param[1]
    try:
        yield sc
    finally:
        sc.close()


def verified(settings: Settings, sc: Scratch, schema: str, timeout_s: float) -> list[Any]:
    with open_databases(settings) as dbs:
        return verify_wait(dbs, [sc.mapping(schema)], VerifyOptions(limit=50), timeout_s)


def ledger(sink: Conn, schema: str) -> dict[str, int]:
    rows = sink.execute(f'SELECT reason, count(*) FROM "{schema}".changefeed_conflicts GROUP BY 1').fetchall()
    return {str(r): int(n) for r, n in rows}  # type: ignore[call-overload]


@pytest.mark.scenario("R1")
def test_resnapshot_after_a_capture_gap_applies_newer_rows_and_removes_deleted_ones(
    settings: Settings, sink: Conn, schema: str, scratch: Scratch
) -> None:
    sc = scratch
    sc.create_tables(ROWS)
    sc.start()
    pipeline = ScratchPipeline(
        settings, sc.mapping(schema), sc.topic, f"it-resnap-{uuid.uuid4().hex[:8]}"
    ).start()
    try:
        (first,) = verified(settings, sc, schema, 180)
        assert first.ok, first
        assert first.sink_rows == ROWS
        snapshot_end = len(sc.read(0, wait_snapshot_done))
        # Rows then change by streaming, so the sink holds streamed positions (as in the issue;
        # PostgreSQL's first transaction after a snapshot has no last commit, the second has).
        sc.sql("UPDATE {t} SET n = 1 WHERE id <= 20")
        sc.sql("UPDATE {t} SET n = 2 WHERE id <= 20")
        (streamed,) = verified(settings, sc, schema, 120)
        assert streamed.ok, streamed

        if sc.gap == "slot dropped":
            changefeed("connectors", "stop", sc.name)
            sc.drop_slot()
        else:  # the recovery procedure (README, Troubleshooting) starts the gap itself
            changefeed("connectors", "offsets", "reset", sc.name, "--no-resume")
        sc.sql("UPDATE {t} SET tier = 'gold', n = n + 1 WHERE id IN (3, 4, 5)")
        sc.sql("DELETE FROM {t} WHERE id IN (10, 11, 12, 13)")
        sc.sql("INSERT INTO {t} VALUES (%s, 'basic', 0), (%s, 'silver', 0)", tuple(INSERTED))
        if sc.gap == "slot dropped":  # the recovery procedure: forget the offsets of the lost slot
            changefeed("connectors", "offsets", "reset", sc.name, "--no-resume")
        straddle = f"UPDATE {{t}} SET tier = 'straddle', n = 99 WHERE id = {STRADDLE}"
        if sc.gap == "slot dropped":
            # A new slot's consistent point waits for every running transaction to end, so none
            # can straddle it (CREATE_REPLICATION_SLOT would wait for this test): commit in the gap.
            sc.sql(straddle)
            changefeed("connectors", "resume", sc.name)
        else:
            with sc.open_transaction() as run:
                run(straddle)
                # A commit elsewhere flushes WAL past that change, so PostgreSQL's snapshot point
                # lies above it: the open transaction's change LSN is below S, its commit above.
                sc.sql("UPDATE {t} SET n = n + 1 WHERE id = 1")
                changefeed("connectors", "resume", sc.name)
                sc.read(snapshot_end, wait_snapshot_done)  # the re-snapshot's last record is out
            # committed now, after the snapshot point: streamed as the first transaction after it

        (result,) = verified(settings, sc, schema, 180)
        assert result.ok, result
        assert result.sink_rows == ROWS - len(DELETED) + len(INSERTED)
        tiers = dict(
            sink.execute(f'SELECT id, tier FROM "{schema}"."{sc.name}" WHERE id IN (3, 4, 5, 7)').fetchall()
        )
        assert tiers == {3: "gold", 4: "gold", 5: "gold", STRADDLE: "straddle"}
        gone = sink.execute(
            f'SELECT count(*) FROM "{schema}"."{sc.name}" WHERE id IN (10, 11, 12, 13)'
        ).fetchone()
        assert gone == (0,)
        # No write refused: every re-snapshot row was newer than what the sink held.
        poll(lambda: ledger(sink, schema).get("snapshot_absent") == len(DELETED), 30, "reconcile ledgered")
        assert ledger(sink, schema) == {"snapshot_absent": len(DELETED)}
    finally:
        pipeline.stop()
