"""An atomic source in `changefeed health` on the real stack: a live worker that cannot own its
atomic source (the test's own sink session holds the ownership lock) is a standby reporting
owned = 0, and health fails on it after the grace, naming the source and what to do; once the
lock is free the worker takes over and health passes at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from streams.pipeline.atomic import owner_lock_key
from streams.settings import Settings
from tests.integration.project.scratch_project import ScratchProject
from tests.polling import poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def project(settings: Settings, tmp_path: Path) -> Iterator[ScratchProject]:
    p = ScratchProject(settings, tmp_path, "atxh")
    try:
        yield p
    finally:
        p.close()


@pytest.mark.timeout(600)
def test_health_fails_on_an_unowned_atomic_source_and_passes_once_owned(project: ScratchProject) -> None:
    p = project
    p.pg_tables({"accounts": "id int PRIMARY KEY, balance bigint NOT NULL"})
    p.tables_file(
        f'[[tables]]\nsource = "{p.pg_schema}.accounts"\nsink = "accounts"\n'
        f'[[sources]]\nconnector = "{p.pg_connector}"\ntransactions = "atomic"\n'
    )
    with p.pg() as pg:
        for i in range(1, 11):
            pg.execute(f'INSERT INTO "{p.pg_schema}".accounts VALUES (%s, 100)', [i])
    key = owner_lock_key(p.sink_schema, p.env["CHANGEFEED_WORKER__APP_ID"], p.pg_prefix)
    metrics = f"http://127.0.0.1:{p.metrics_port}/metrics"
    health = ("health", "--max-lag", "100000", "--metrics", metrics, "--atomic-watch", "45")
    with p.sink() as holder:  # the lock a worker would take: this session owns the source now
        holder.autocommit = True
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
        p.start()
        standby = f'changefeed_atomic_source_owned{{source="{p.pg_prefix}"}} 0.0'
        poll(lambda: standby in _scrape(metrics), 120, "the worker standing by, reporting owned = 0")
        started = time.monotonic()
        stalled = p.run(*health)
        took = time.monotonic() - started
        assert stalled.returncode == 1, stalled.stdout + stalled.stderr
        line = f"atomic source {p.pg_prefix}: STALLED, no worker owns it for"
        assert line in stalled.stderr, stalled.stderr
        assert "changefeed worker" in stalled.stderr, stalled.stderr
        assert "workers:" not in stalled.stderr, stalled.stderr  # the worker is there: only this fails
        assert p.sink_rows("accounts") == []  # nothing is applied while nobody owns the source
        holder.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
    poll(lambda: len(p.sink_rows("accounts")) == 10, 120, "the owner applying the snapshot")
    started = time.monotonic()
    ok = p.run(*health)
    took_ok = time.monotonic() - started
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 atomic sources" in ok.stdout, ok.stdout
    print(f"\nhealth: STALLED after {took:.1f} s of watching; OK in {took_ok:.1f} s once owned")


def _scrape(url: str) -> str:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return ""
