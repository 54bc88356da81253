"""Many poison rows in one batch cost one extra flush, not one each, and are written once (real stack).

An update whose ``bio`` is Debezium's unavailable-value placeholder, for a customer the sink has
no row for, cannot be applied (it would insert NULL): it is dead-lettered. A batch holding 50 of
them and 50 good rows used to be flushed 51 times, each attempt writing the whole batch again
before naming the next poison record; the sink's own row-write counters show how often it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from streams.settings import Settings
from tests.integration.streams.helpers import Crafter, Worker, end_offsets, stored_offsets
from tests.integration.streams.test_dead_letters import letters
from tests.polling import poll

pytestmark = pytest.mark.integration
PLACEHOLDER = "__debezium_unavailable_value"
POISON = range(1, 51)  # customer ids the sink never saw, updated with the placeholder
GOOD = range(101, 151)  # plain inserts


def row_writes(sink: psycopg.Connection[Any], schema: str) -> int:
    """Rows the sink table's statements inserted or updated, rolled-back attempts included."""
    row = sink.execute(
        "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
        (schema, "customer_directory"),
    ).fetchone()
    return int(row[0]) if row is not None else 0


def test_a_batch_with_many_placeholder_rows_is_flushed_twice_and_every_one_dead_lettered_once(
    settings: Settings,
    sink: psycopg.Connection[Any],
    schema: str,
    topic: str,
    crafter: Crafter,
    workers: Callable[..., Worker],
) -> None:
    poison: dict[int, int] = {}  # source offset → customer id
    for n, (bad, good) in enumerate(zip(POISON, GOOD, strict=True)):  # interleaved, one partition
        poison[crafter.send(topic, *crafter.message(bad, 1000 + 2 * n, "u", bio=PLACEHOLDER), 0)] = bad
        crafter.send(topic, *crafter.message(good, 1001 + 2 * n, "c", bio=f"bio {good}"), 0)
    group = f"it-poison-{uuid.uuid4().hex[:8]}"
    w = workers(group, schema, [topic])  # started after: its first poll fetches them together
    ends = {p: o for p, o in end_offsets(settings, topic).items() if o}
    poll(
        lambda: stored_offsets(sink, schema, group, topic) == ends, 120, "the worker to get past every record"
    )
    assert w.stop() == 0  # its session ends: PostgreSQL reports the session's row counts

    rows = sink.execute(f'SELECT customer_id, bio FROM "{schema}".customer_directory ORDER BY 1').fetchall()
    assert rows == [(cid, f"bio {cid}") for cid in GOOD]  # every good row, no NULL-bio row
    got = letters(settings, topic)
    assert sorted(int(why["source_offset"]) for why, _, _ in got) == sorted(poison)  # each once
    for why, _, _ in got:
        assert why["error_class"] == "SinkRowError"
        cid = poison[int(why["source_offset"])]
        assert "unavailable-value placeholder" in why["error_message"]
        assert f"key ({cid},)" in why["error_message"]  # its own record's text
    # One attempt writes the 100 rows and is rolled back, the next writes the 50 good ones: 150
    # (more only if the first poll split the batch). One attempt per poison row wrote ~3,800.
    writes = poll(
        lambda: row_writes(sink, schema) >= len(POISON) + 2 * len(GOOD) and row_writes(sink, schema),
        30,
        "the row counts",
    )
    assert writes <= 2 * (len(POISON) + len(GOOD)), f"{writes} row writes for 100 records"

    # Redelivered (another group: as after a crash between the dead letters and the commit): the
    # DLQ index finds every one, none is written again.
    again = f"it-poison-again-{uuid.uuid4().hex[:8]}"
    w2 = workers(again, schema, [topic])
    poll(
        lambda: stored_offsets(sink, schema, again, topic) == ends, 120, "the second worker to get past them"
    )
    assert len(letters(settings, topic)) == len(POISON)
    assert w2.text().count("an earlier delivery dead-lettered it") == len(POISON)
