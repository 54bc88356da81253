"""Tables a connector update starts capturing, so ``connectors apply`` can backfill them.

A table added to a running connector's ``table.include.list`` is captured from that moment on;
its existing rows reach Kafka only through a snapshot. ``added_tables`` compares the old and new
include lists entry by entry: literal table names are backfilled with an incremental snapshot
(``signals.send_snapshot_signal``); a regular expression cannot be expanded here and is reported
so the operator can name the tables (``changefeed connectors snapshot``).
"""

from __future__ import annotations

import re
import time

from streams.connect.apply import wait_running
from streams.connect.client import ConnectClient
from streams.connect.diff import ConfigDiff
from streams.errors import ConnectorFailedError

INCLUDE = "table.include.list"
_LITERAL = re.compile(r"^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$")


def _entries(value: str | None) -> list[str]:
    return [e.strip() for e in (value or "").split(",") if e.strip()]


def added_tables(diff: ConfigDiff, signal_collection: str = "") -> tuple[list[str], list[str]]:
    """(literal tables added to the include list, added entries that are patterns).

    Nothing for a connector being created: its initial snapshot (``snapshot.mode``) covers it.
    The signal table itself is never snapshotted.
    """
    if diff.create:
        return [], []
    change = next((c for c in diff.changes if c.key == INCLUDE), None)
    if change is None:
        return [], []
    old = set(_entries(change.old))
    added = [e for e in _entries(change.new) if e not in old and e != signal_collection]
    return [e for e in added if _LITERAL.match(e)], [e for e in added if not _LITERAL.match(e)]


# Regenerating task configs after a PUT takes Connect a moment (a rebalance on a busy worker).
_CONFIG_WAIT_S = 60.0


def restart_with(client: ConnectClient, name: str, include: str, timeout_s: float = _CONFIG_WAIT_S) -> None:
    """Make sure the connector's tasks run with ``include`` before a backfill is signalled.

    After a PUT, Connect regenerates the task configs and restarts the tasks asynchronously, and
    its status can still say RUNNING for the old task. A signal the old task reads names a table
    outside its include list, and Debezium skips it without a word. So: wait until the task
    configs carry the new list, restart the tasks, and wait until they run again.
    """
    deadline = time.monotonic() + timeout_s
    while any(c.get(INCLUDE) != include for c in client.task_configs(name)):
        if time.monotonic() > deadline:
            msg = f"task configs still lack the new {INCLUDE} after {timeout_s:.0f} s"
            raise ConnectorFailedError(name, msg)
        time.sleep(0.5)  # polling Connect's task configs
    client.restart(name, include_tasks=True)
    wait_running(client, name, grace_s=5.0)
