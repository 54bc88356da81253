"""`changefeed connectors ...`: connectors as code against the Kafka Connect REST API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from streams.cli.context import settings_of
from streams.connect import ConnectClient, apply_definition, load_definitions, template_variables
from streams.connect.apply import (
    Action,
    ApplyResult,
    missing_files,
    validate_definition,
    wait_running,
    wait_state,
)
from streams.connect.backfill import INCLUDE, added_tables, restart_with
from streams.connect.definitions import ConnectorDefinition, secrets_file
from streams.connect.heal import DEFAULT_INTERVAL_S, Cause, Healer, classify, heal_forever, summary
from streams.connect.signals import send_snapshot_signal
from streams.connect.skip import LEDGER as SKIP_LEDGER
from streams.connect.skip import skip_postgres_transaction
from streams.errors import ChangefeedError, ConnectUnavailableError
from streams.project.sources import atomic_connectors, with_transaction_metadata
from streams.project.tables import load_tables

app = typer.Typer(help="Manage Kafka Connect connectors defined in connectors/*.json.", no_args_is_help=True)
offsets_app = typer.Typer(help="Show or reset a connector's source offsets.", no_args_is_help=True)
app.add_typer(offsets_app, name="offsets")

out = Console()
err = Console(stderr=True)

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Directory of connector definitions (default: [project] connectors_dir)."),
]
Names = Annotated[list[str] | None, typer.Argument(help="Connector names (default: all definitions).")]
Name = Annotated[str, typer.Argument(help="Connector name.")]
_STATE_STYLE = {"RUNNING": "green", "FAILED": "red", "PAUSED": "yellow", "STOPPED": "yellow"}


def _atomic(tables: Path) -> set[str]:
    """The connectors the tables file marks atomic (none when it cannot be read: the worker
    reports that file's errors; managing connectors does not depend on it)."""
    try:
        return atomic_connectors(load_tables(tables).sources)
    except ChangefeedError:
        return set()


@contextmanager
def _connect(ctx: typer.Context) -> Iterator[ConnectClient]:
    """A client for this invocation; every changefeed error becomes a message and exit code."""
    url = settings_of(ctx).connect.url
    try:
        with ConnectClient(url) as client:
            yield client
    except ConnectUnavailableError as exc:
        err.print(
            f"[red]Kafka Connect is not reachable at {url}[/red]: {exc}\n"
            "Start the local stack: run `changefeed up`."
        )
        raise typer.Exit(2) from exc
    except ChangefeedError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def _definitions(
    ctx: typer.Context, directory: Path | None, names: list[str] | None
) -> list[ConnectorDefinition]:
    settings = settings_of(ctx)
    try:
        definitions = load_definitions(
            directory or settings.project.connectors_dir, template_variables(settings), names or ()
        )
        # An atomic source's connector must provide transaction metadata (streams.project.sources).
        return with_transaction_metadata(definitions, _atomic(settings.project.tables))
    except ChangefeedError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def _require_secrets(ctx: typer.Context, definitions: list[ConnectorDefinition]) -> None:
    """Connect would answer 500 'Could not read properties from file': say what creates it."""
    missing = missing_files(definitions, [secrets_file(settings_of(ctx))])
    if missing:
        err.print(
            f"[red]error:[/red] the connectors read their passwords from {missing[0]}, which does not"
            " exist yet.\nRun `changefeed services migrate` first: it creates the connectors' database"
            " logins and writes their passwords to that file."
        )
        raise typer.Exit(1)


@app.command()
def apply(
    ctx: typer.Context,
    names: Names = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and show the diff only.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for RUNNING.")] = 120.0,
    directory: DirOption = None,
) -> None:
    """Validate, diff against what is live, PUT only what changed, wait until RUNNING."""
    definitions = _definitions(ctx, directory, names)
    _require_secrets(ctx, definitions)
    with _connect(ctx) as client:
        for definition in definitions:
            result = apply_definition(client, definition, dry_run=dry_run, wait_s=wait)
            out.print(f"[bold]{result.name}[/bold]: {result.action.value}")
            for change in result.diff.changes if result.action is not Action.UNCHANGED else ():
                out.print(f"  {change}", markup=False, highlight=False, soft_wrap=True)
            if result.status is not None:
                out.print(f"  {result.status.state}, {len(result.status.tasks)} task(s)")
            if result.action is Action.UPDATED:
                _backfill(ctx, definition.name, definition.config, result)


def _backfill(ctx: typer.Context, name: str, config: dict[str, str], result: ApplyResult) -> None:
    """Tables just added to a running connector: their existing rows come by incremental snapshot."""
    tables, patterns = added_tables(result.diff, config.get("signal.data.collection", ""))
    for pattern in patterns:
        out.print(
            f"  [yellow]{pattern!r} is a pattern: backfill the tables it adds with"
            f" `changefeed connectors snapshot {name} <schema.table>…`[/yellow]"
        )
    if not tables:
        return
    try:
        with _connect(ctx) as client:
            restart_with(client, name, config.get(INCLUDE, ""))
        signal_id = send_snapshot_signal(settings_of(ctx), name, config, tables)
    except ChangefeedError as exc:
        err.print(f"  [red]cannot backfill {', '.join(tables)}:[/red] {exc}")
        raise typer.Exit(1) from exc
    out.print(f"  backfilling {', '.join(tables)}: incremental snapshot requested (signal {signal_id})")


@app.command()
def validate(ctx: typer.Context, names: Names = None, directory: DirOption = None) -> None:
    """Ask each connector plugin to validate its definition (nothing is created)."""
    definitions = _definitions(ctx, directory, names)
    _require_secrets(ctx, definitions)
    with _connect(ctx) as client:
        for definition in definitions:
            validate_definition(client, definition)
            out.print(f"[bold]{definition.name}[/bold]: valid")


@app.command()
def status(ctx: typer.Context) -> None:
    """One table: connector, type, state, tasks and their states, worker, topics."""
    table = Table("connector", "type", "state", "tasks", "worker")
    table.add_column("topics", overflow="fold")
    with _connect(ctx) as client:
        for name in client.names():
            st = client.status(name)
            # A FAILED task shows why (first trace line, and whether `heal` would restart it).
            tasks = (
                "\n".join(
                    f"{t.id}: {_styled(t.state)}" + (_why(t.trace) if t.state == "FAILED" else "")
                    for t in st.tasks
                )
                or "-"
            )
            table.add_row(
                name, st.type, _styled(st.state), tasks, st.worker_id, "\n".join(client.topics(name)) or "-"
            )
    out.print(table)


@app.command()
def heal(
    ctx: typer.Context,
    names: Names = None,
    watch: Annotated[bool, typer.Option("--watch", help="Keep supervising until interrupted.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks (--watch).")] = DEFAULT_INTERVAL_S,
) -> None:
    """Restart FAILED connectors/tasks whose cause is transient (backoff per task); leave the rest FAILED.

    Without --watch: one pass; exit 1 if a failure was left alone (permanent or unknown cause).
    """
    if watch:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                heal_forever(
                    settings_of(ctx),
                    interval_s=interval,
                    names=tuple(names or ()),
                    on_action=lambda a: out.print(escape(str(a)), highlight=False),
                )
            )
        return
    with _connect(ctx) as client:
        actions = Healer(client, names=tuple(names or ())).heal_once()
    for action in actions:
        out.print(escape(str(action)), highlight=False)
    if not actions:
        out.print("nothing FAILED")
    if any(a.cause is not Cause.TRANSIENT for a in actions):
        raise typer.Exit(1)


def _why(trace: str) -> str:
    return f" {escape(summary(trace))} ({classify(trace).value})"


def _styled(state: str) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def _simple(ctx: typer.Context, name: str, verb: str, call: Callable[[ConnectClient], None]) -> None:
    with _connect(ctx) as client:
        call(client)
    out.print(f"[bold]{name}[/bold]: {verb}")


@app.command()
def pause(ctx: typer.Context, name: Name) -> None:
    """Pause the connector and its tasks (offsets kept, nothing read)."""
    _simple(ctx, name, "pause requested", lambda c: c.pause(name))


@app.command()
def resume(ctx: typer.Context, name: Name) -> None:
    """Resume a paused or stopped connector."""
    _simple(ctx, name, "resume requested", lambda c: c.resume(name))


@app.command()
def stop(ctx: typer.Context, name: Name) -> None:
    """Stop the connector and release its tasks; the config stays (needed before offset changes)."""
    _simple(ctx, name, "stop requested", lambda c: c.stop(name))


@app.command()
def delete(ctx: typer.Context, name: Name) -> None:
    """Delete the connector (its offsets and the database slot/history remain)."""
    _simple(ctx, name, "deleted", lambda c: c.delete(name))


@app.command()
def restart(
    ctx: typer.Context,
    name: Name,
    failed_only: Annotated[
        bool, typer.Option("--failed-only", help="Restart only FAILED instances.")
    ] = False,
) -> None:
    """Restart the connector and its tasks."""
    _simple(
        ctx, name, "restart requested", lambda c: c.restart(name, include_tasks=True, only_failed=failed_only)
    )


@app.command()
def skip(
    ctx: typer.Context,
    name: Name,
    reason: Annotated[str, typer.Option("--reason", help="Why this loss is accepted (recorded).")],
    resume_after: Annotated[bool, typer.Option("--resume/--no-resume", help="Resume when moved.")] = True,
) -> None:
    """Move a PostgreSQL connector past the ONE transaction it cannot produce, and record the loss.

    For a permanent failure such as RecordTooLargeException when the limits cannot be raised:
    stops the connector, finds the first unprocessed transaction in its slot, stores an offset
    just past it, appends what was skipped to <state_dir>/capture-skips.jsonl, resumes.
    """
    with _connect(ctx) as client:
        record = skip_postgres_transaction(settings_of(ctx), client, name, reason, resume=resume_after)
    out.print(
        f"[bold]{name}[/bold]: skipped transaction {record.xid} ({record.first_lsn} .. {record.end_lsn}):"
        f" {record.changes} change(s), {record.data_bytes} bytes, tables {', '.join(record.tables) or '-'}",
        highlight=False,
    )
    out.print(
        f"recorded in {settings_of(ctx).stack.state_dir.resolve() / SKIP_LEDGER}. Those rows are missing"
        " downstream until they change again or are re-snapshotted (`changefeed connectors snapshot`)."
    )


@offsets_app.command("show")
def offsets_show(ctx: typer.Context, name: Name) -> None:
    """Print each source partition and its committed offset."""
    with _connect(ctx) as client:
        offsets = client.offsets(name)
    if not offsets:
        out.print(f"[bold]{name}[/bold]: no committed offsets")
    for offset in offsets:
        line = f"{dict(offset.partition)} -> {offset.offset}"
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@offsets_app.command("reset")
def offsets_reset(
    ctx: typer.Context,
    name: Name,
    resume_after: Annotated[bool, typer.Option("--resume/--no-resume", help="Resume when reset.")] = True,
) -> None:
    """Stop the connector, delete its offsets (it re-snapshots on start), then resume."""
    with _connect(ctx) as client:
        client.stop(name)
        wait_state(client, name, "STOPPED")
        out.print(client.reset_offsets(name) or "offsets reset")
        if resume_after:
            client.resume(name)
            wait_running(client, name, accept_held=False)
            out.print(f"[bold]{name}[/bold]: RUNNING")


@app.command()
def snapshot(
    ctx: typer.Context,
    name: Name,
    tables: Annotated[list[str], typer.Argument(help="Fully qualified tables, e.g. public.customers.")],
) -> None:
    """Trigger a Debezium incremental snapshot of TABLE… through the connector's signal table."""
    with _connect(ctx) as client:
        config = client.config(name)
        if config is None:
            err.print(f"[red]error:[/red] no connector named {name}")
            raise typer.Exit(1)
        signal_id = send_snapshot_signal(settings_of(ctx), name, config, tables)
    out.print(
        f"[bold]{name}[/bold]: incremental snapshot of {', '.join(tables)} requested (signal {signal_id})"
    )
