"""A lookup converges whichever of its two tables two workers flush first (fault scenario E6,
tests/faults/README.md).

Deterministic: the customers flush is executed and held uncommitted while another sink flushes
an order of that customer. Without the lookup lock the order's flush reads the directory before
the customer commits (no name), and the customer's flush found no order row to copy into: the
order keeps NULLs for good. With it, the order's flush waits, then copies the committed name.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from streams.cdc import ChangeEvent, parse_change_event
from streams.demo.project import shipping_mappings
from streams.sinks import FlushResult, PostgresSink
from streams.sinks import flush as flush_module
from streams.sinks.flush import flush_steps
from tests.integration.sinks.sink_helpers import drive, event

pytestmark = pytest.mark.integration
Conn = psycopg.Connection[Any]


def _order(order_id: int, customer_id: int, gtid: int) -> ChangeEvent:
    value = {
        "op": "c",
        "before": None,
        "after": {"id": order_id, "customer_id": customer_id, "status": "PENDING"},
        "source": {
            "connector": "mariadb",
            "db": "orders",
            "table": "orders",
            "gtid": f"0-1-{gtid}",
            "file": "mysql-bin.000001",
            "pos": gtid * 100,
            "row": 0,
            "ts_ms": 1_700_000_000_000,
        },
        "ts_ms": 1_700_000_000_000,
    }
    return parse_change_event(value, topic="orders.orders.orders", partition=0, offset=gtid)


def _waiting(db: Conn, application: str) -> bool:
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        " AND state = 'active' AND wait_event_type = 'Lock'",
        [application],
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("locked", [True, False], ids=["with-lookup-lock", "without-lookup-lock"])
def test_order_and_customer_flushed_at_once_converge(
    sink_conninfo: str, schema: str, db: Conn, locked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not locked:  # the race this lock closes, reproduced
        monkeypatch.setattr(flush_module, "lock_keys", lambda schema, targets: [])
    mappings = shipping_mappings(schema)
    PostgresSink(sink_conninfo, mappings, "setup", control_schema=schema).ensure_schema()
    customers = PostgresSink(sink_conninfo, mappings, "w1", control_schema=schema)
    customers.add(
        0, event("c", {"id": 7, "email": "ada@x.test", "first_name": "Ada", "last_name": "L"}, 100, 0)
    )
    application = f"it-lookup-{uuid.uuid4().hex[:8]}"
    orders_conninfo = make_conninfo(sink_conninfo, application_name=application)
    orders = PostgresSink(orders_conninfo, mappings, "w2", control_schema=schema)
    orders.add(0, _order(70, 7, 5))
    outcome: list[FlushResult | BaseException] = []

    def flush_orders() -> None:
        try:
            outcome.append(orders.flush())
        except BaseException as exc:  # surfaced below
            outcome.append(exc)

    with psycopg.connect(sink_conninfo) as conn, conn.transaction(), conn.cursor() as cur:
        drive(cur, flush_steps(customers.batch, "w1", schema, customers.tables))  # held open
        racer = threading.Thread(target=flush_orders, daemon=True)
        racer.start()
        if locked:
            deadline = time.monotonic() + 20
            while not _waiting(db, application) and racer.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)  # polling pg_stat_activity until the orders flush waits
            assert racer.is_alive(), f"the orders flush did not wait for the customers flush: {outcome}"
        else:
            racer.join(20)  # nothing serializes the two: it commits while the customer is uncommitted
            assert not racer.is_alive()
    racer.join(30)
    assert isinstance(outcome[0], FlushResult), outcome
    row = db.execute(
        f'SELECT customer_name, customer_email FROM "{schema}".order_view WHERE order_id = 70'
    ).fetchone()
    if locked:
        assert row == ("Ada L", "ada@x.test")
    else:
        assert row == (None, None)  # the divergence verify reported, for good
