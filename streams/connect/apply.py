"""Apply a connector definition the way ``kubectl apply`` would: validate, diff, PUT, wait.

Validation runs first so a bad config is rejected property by property and nothing is created.
Only a non-empty diff is PUT (an unchanged PUT would restart nothing but still churn the config
topic). Then the connector is polled until it and every task are RUNNING, or a FAILED task's
trace summary is raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from streams.connect.client import ConnectClient
from streams.connect.definitions import ConnectorDefinition
from streams.connect.diff import ConfigDiff, diff_config
from streams.connect.models import FAILED, ConnectorStatus
from streams.errors import ConnectNotFoundError, ConnectorFailedError, ConnectValidationError

# A Debezium task snapshotting a small demo table reaches RUNNING in seconds; a cold JVM with a
# fresh slot or schema history on 2 cores can take ~30 s. Leave headroom.
DEFAULT_WAIT_S = 120.0
# After a PUT, Connect may still report the previous generation's FAILED task for a moment.
_FAILURE_GRACE_S = 5.0
_POLL_S = 0.5
HELD_STATES = frozenset({"PAUSED", "STOPPED"})


class Action(Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    WOULD_CREATE = "would create"
    WOULD_UPDATE = "would update"


@dataclass(frozen=True)
class ApplyResult:
    name: str
    action: Action
    diff: ConfigDiff
    status: ConnectorStatus | None = None


def missing_files(definitions: list[ConnectorDefinition], files: list[Path]) -> list[Path]:
    """Those of ``files`` that some definition's config refers to and that do not exist.

    Connect resolves ``${file:<path>:<key>}`` on its own host when it validates or starts a
    connector, and a missing file comes back as an opaque 500 (``ConfigException: Could not
    read properties from file``); checked here first, the caller can say what creates it.
    """
    text = "\n".join(v for d in definitions for v in d.config.values() if isinstance(v, str))
    return [f for f in files if str(f) in text and not f.exists()]


def validate_definition(client: ConnectClient, definition: ConnectorDefinition) -> None:
    """Raise ConnectValidationError naming every property the plugin rejects."""
    # Connect's validator requires `name` (PUT /connectors/{name}/config adds it implicitly).
    config = {**definition.config, "name": definition.name}
    result = client.validate(definition.connector_class, config)
    if result.error_count:
        msg = f"{definition.name}: {result.error_count} invalid configuration value(s)"
        details = [str(p) for p in result.problems] or ["(Connect gave no per-property message)"]
        raise ConnectValidationError(400, msg, details)


def wait_running(
    client: ConnectClient,
    name: str,
    *,
    timeout_s: float = DEFAULT_WAIT_S,
    grace_s: float = 0.0,
    accept_held: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ConnectorStatus:
    """Poll until RUNNING (connector and all tasks); FAILED after the grace period raises.

    With ``accept_held`` a PAUSED/STOPPED connector also ends the wait: an operator holds it.
    """
    start = clock()
    last: ConnectorStatus | None = None
    while True:
        try:
            last = client.status(name)
        except ConnectNotFoundError:
            last = None  # just created: the status record is not written yet
        if last is not None:
            if last.running or (accept_held and last.state in HELD_STATES):
                return last
            failed = last.state == FAILED or bool(last.failed_tasks)
            if failed and clock() - start >= grace_s:
                raise ConnectorFailedError(name, "FAILED", _traces(last))
        if clock() - start > timeout_s:
            seen = "no status" if last is None else _describe(last)
            msg = f"not RUNNING after {timeout_s:.0f} s ({seen})"
            raise ConnectorFailedError(name, msg, _traces(last) if last else [])
        sleep(_POLL_S)


def wait_state(
    client: ConnectClient,
    name: str,
    state: str,
    *,
    timeout_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ConnectorStatus:
    """Poll until the connector reports ``state`` (e.g. STOPPED before touching offsets)."""
    deadline = clock() + timeout_s
    while True:
        status = client.status(name)
        if status.state == state and (state != "STOPPED" or not status.tasks):
            return status
        if clock() > deadline:
            msg = f"not {state} after {timeout_s:.0f} s ({_describe(status)})"
            raise ConnectorFailedError(name, msg)
        sleep(_POLL_S)


def _describe(status: ConnectorStatus) -> str:
    tasks = ", ".join(f"task {t.id} {t.state}" for t in status.tasks) or "no tasks"
    return f"connector {status.state}; {tasks}"


def _traces(status: ConnectorStatus) -> list[str]:
    out = []
    if status.state == FAILED and status.trace:
        out.append("connector: " + status.trace.splitlines()[0])
    out += [f"task {t.id} on {t.worker_id}: {t.trace_summary}" for t in status.failed_tasks]
    return out


def apply_definition(
    client: ConnectClient,
    definition: ConnectorDefinition,
    *,
    dry_run: bool = False,
    wait_s: float = DEFAULT_WAIT_S,
) -> ApplyResult:
    """Validate, diff against live, PUT only when something changed, then wait for RUNNING."""
    validate_definition(client, definition)
    diff = diff_config(definition.name, client.config(definition.name), definition.config)
    if dry_run:
        action = (
            Action.UNCHANGED if diff.empty else Action.WOULD_CREATE if diff.create else Action.WOULD_UPDATE
        )
        return ApplyResult(definition.name, action, diff)
    if diff.empty:
        action = Action.UNCHANGED
    else:
        client.put_config(definition.name, definition.config)
        action = Action.CREATED if diff.create else Action.UPDATED
    grace = 0.0 if action is Action.UNCHANGED else _FAILURE_GRACE_S
    status = wait_running(client, definition.name, timeout_s=wait_s, grace_s=grace)
    return ApplyResult(definition.name, action, diff, status)
