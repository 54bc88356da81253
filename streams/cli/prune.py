"""``changefeed prune``: retention for tombstones and the conflict ledger (see sinks/retention.py)."""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from streams.cli.context import settings_of
from streams.errors import ConfigError
from streams.sinks import conninfo_from
from streams.sinks.retention import parse_duration, prune_conflicts, prune_tombstones
from streams.verify import shipping_mappings

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)


def prune(
    ctx: typer.Context,
    tombstones_older_than: Annotated[
        str,
        typer.Option(
            "--tombstones-older-than",
            help="Drop hard-delete tombstones whose delete committed longer ago than this (7d, 12h, ...);"
            " keep it above the change topics' retention.",
        ),
    ] = "7d",
    conflicts_older_than: Annotated[
        str, typer.Option("--conflicts-older-than", help="Drop conflict-ledger entries older than this.")
    ] = "30d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be removed.")] = False,
) -> None:
    """Remove old tombstones and conflict-ledger entries, in small batches (safe while workers run)."""
    settings = settings_of(ctx)
    schema = settings.pipeline.sink_schema
    try:
        tomb_age, ledger_age = parse_duration(tombstones_older_than), parse_duration(conflicts_older_than)
        mappings = shipping_mappings(schema, settings.pipeline.extra_columns)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    verb = "would remove" if dry_run else "removed"
    try:
        with (
            psycopg.connect(conninfo_from(settings.sink_postgres)) as conn,
            out.status("pruning ...") as status,
        ):
            def progress(table: str, rows: int) -> None:
                status.update(f"pruning {table}: {rows:,} rows so far")

            counts = prune_tombstones(conn, mappings, tomb_age, dry_run=dry_run, progress=progress)
            counts[f"{schema}.changefeed_conflicts"] = prune_conflicts(
                conn, schema, ledger_age, dry_run=dry_run, progress=progress
            )
    except psycopg.errors.UndefinedTable as exc:
        err.print(f"[red]{exc.diag.message_primary}[/red]: no worker has created the sink tables yet")
        raise typer.Exit(1) from exc
    except psycopg.OperationalError as exc:
        err.print(f"[red]cannot reach the sink database: {exc}[/red]\nIs it running? `changefeed status`")
        raise typer.Exit(1) from exc
    grid = Table("table", f"rows {verb}", "older than")
    for table, rows in counts.items():
        age = conflicts_older_than if table.endswith("changefeed_conflicts") else tombstones_older_than
        grid.add_row(table, f"{rows:,}", age)
    out.print(grid)
