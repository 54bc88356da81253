"""`changefeed connectors ...`: connectors as code against the Kafka Connect REST API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.context import settings_of
from streams.connect import ConnectClient, apply_definition, load_definitions, template_variables
from streams.connect.apply import Action, missing_files, validate_definition, wait_running, wait_state
from streams.connect.definitions import ConnectorDefinition, secrets_file
from streams.connect.signals import send_snapshot_signal
from streams.errors import ChangefeedError, ConnectUnavailableError

app = typer.Typer(help="Manage Kafka Connect connectors defined in connectors/*.json.", no_args_is_help=True)
offsets_app = typer.Typer(help="Show or reset a connector's source offsets.", no_args_is_help=True)
app.add_typer(offsets_app, name="offsets")

out = Console()
err = Console(stderr=True)

DirOption = Annotated[Path, typer.Option("--dir", help="Directory of connector definitions.")]
Names = Annotated[list[str] | None, typer.Argument(help="Connector names (default: all definitions).")]
Name = Annotated[str, typer.Argument(help="Connector name.")]
_STATE_STYLE = {"RUNNING": "green", "FAILED": "red", "PAUSED": "yellow", "STOPPED": "yellow"}


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


def _definitions(ctx: typer.Context, directory: Path, names: list[str] | None) -> list[ConnectorDefinition]:
    try:
        return load_definitions(directory, template_variables(settings_of(ctx)), names or ())
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
    directory: DirOption = Path("connectors"),
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


@app.command()
def validate(ctx: typer.Context, names: Names = None, directory: DirOption = Path("connectors")) -> None:
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
            tasks = "\n".join(f"{t.id}: {_styled(t.state)}" for t in st.tasks) or "-"
            table.add_row(
                name, st.type, _styled(st.state), tasks, st.worker_id, "\n".join(client.topics(name)) or "-"
            )
    out.print(table)


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
