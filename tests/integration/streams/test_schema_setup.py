"""Sink schema setup by several workers starting at once (issue: UniqueViolation on pg_type)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from streams.demo.project import shipping_sink
from streams.settings import Settings
from streams.sinks import conninfo_from

pytestmark = pytest.mark.integration
WORKERS = 6
ROUNDS = 5


async def _start_together(conninfo: str, schema: str) -> list[BaseException | None]:
    sinks = [shipping_sink(conninfo, f"it-setup-{i}", schema) for i in range(WORKERS)]
    try:
        return list(
            await asyncio.gather(*(s.ensure_schema(audit=True) for s in sinks), return_exceptions=True)
        )
    finally:
        for s in sinks:
            await s.close()


def test_workers_starting_at_once_all_set_the_schema_up(settings: Settings) -> None:
    conninfo = conninfo_from(settings.sink_postgres)
    failures: list[BaseException] = []
    for _ in range(ROUNDS):  # a race: each round a fresh schema, every worker's DDL at once
        schema = f"it_setup_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            try:
                outcomes = asyncio.run(_start_together(conninfo, schema))
                failures += [o for o in outcomes if o is not None]
                tables = conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = %s", [schema]
                ).fetchone()
                assert tables is not None
                assert tables[0] > 0
            finally:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert failures == [], f"{len(failures)} of {WORKERS * ROUNDS} setups failed: {failures[:2]}"
