"""`changefeed sink ...`: the workers' least-privilege login on the sink database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from streams.cli.context import settings_of
from streams.errors import ConfigError
from streams.project.sink_grant import grant_sink

app = typer.Typer(help="The sink database: the workers' own login and its grants.", no_args_is_help=True)
out = Console()


@app.callback()
def _sink() -> None:
    """Keep `sink` a command group even while it has a single command."""


@app.command()
def grant(
    ctx: typer.Context,
    schema: Annotated[
        str | None, typer.Option("--schema", help="Sink schema to grant (default: pipeline.sink_schema).")
    ] = None,
) -> None:
    """Create/refresh the workers' sink login (admin login needed) and grant it one sink schema.

    Idempotent: rerun it for each sink schema the workers write (it creates a missing schema).
    """
    try:
        report = grant_sink(settings_of(ctx), schema)
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except Exception as exc:  # psycopg errors: show and exit non-zero
        Console(stderr=True).print(f"[red]sink grant failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    out.print(f"[bold]{report.database}[/bold]: " + ", ".join(report.applied))
