"""`changefeed services ...`: set up the demo source services the connectors capture."""

from __future__ import annotations

import typer
from rich.console import Console

from streams.cli.context import settings_of
from streams.demo.services.migrate import migrate_all

app = typer.Typer(
    help="Demo source services (customers on PostgreSQL, orders on MariaDB).", no_args_is_help=True
)
out = Console()


@app.callback()
def _services() -> None:
    """Keep `services` a command group even while it has a single command."""


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Apply pending migrations and (re)create the Debezium logins from the secrets file."""
    try:
        reports = migrate_all(settings_of(ctx))
    except Exception as exc:  # psycopg/pymysql errors have no common base; show and exit non-zero
        Console(stderr=True).print(f"[red]migration failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    for report in reports:
        applied = ", ".join(report.applied) or "nothing pending"
        out.print(
            f"[bold]{report.database}[/bold]: applied {applied} ({len(report.skipped)} already applied)"
        )
