"""``changefeed worker`` and ``changefeed conflicts``: run the pipeline, read the conflict ledger."""

from __future__ import annotations

import json
import os
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from streams.cli.context import settings_of
from streams.sinks import conninfo_from, load_conflicts

out = Console()


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("conflicts")(conflicts)


def worker(
    ctx: typer.Context,
    loglevel: Annotated[str, typer.Option("--loglevel", help="DEBUG, INFO, WARNING, ERROR.")] = "INFO",
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            help="Worker processes in this group on this host (useful up to the partition count).",
        ),
    ] = 1,
) -> None:
    """Consume the project's change topics into its sink tables and domain topics ([project] settings)."""
    settings = settings_of(ctx)
    if processes > 1:
        from streams.cli.processes import run_workers

        # The children read the same settings; a --state-dir given here reaches them as its variable.
        os.environ["CHANGEFEED_STACK__STATE_DIR"] = str(settings.stack.state_dir)
        raise typer.Exit(run_workers(processes, loglevel, settings.worker.metrics_port))
    from streams.app import build_worker

    build_worker(settings, settings.pipeline, loglevel).execute_from_commandline()


def conflicts(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    table: Annotated[str | None, typer.Option("--table", help="schema.table to filter on.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Writes the version guard refused (newest first), with both positions."""
    schema = settings_of(ctx).pipeline.sink_schema
    with psycopg.connect(conninfo_from(settings_of(ctx).sink_postgres)) as conn:
        rows = load_conflicts(conn, limit=limit, sink_table=table, schema=schema)
    if as_json:
        out.print_json(json.dumps(rows, default=lambda v: v.hex() if isinstance(v, bytes) else str(v)))
        return
    grid = Table("id", "table", "key", "reason", "policy", "stored", "incoming", "record", "at")
    for r in rows:
        grid.add_row(
            str(r["id"]),
            r["sink_table"],
            json.dumps(r["row_key"]),
            r["reason"],
            r["policy"],
            (r["stored_position"] or b"").hex()[:18],
            bytes(r["incoming_position"]).hex()[:18],
            f"{r['topic']}[{r['partition']}]@{r['kafka_offset']}",
            str(r["at"])[:19],
        )
    out.print(grid)
