"""`changefeed demo`: the README's first command."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from streams.cli.context import settings_of
from streams.demo import DemoOptions, run_demo
from streams.demo.summary import LOOK_AND_STOP, summary_table
from streams.errors import ChangefeedError
from streams.load import LoadPlan, Mix
from streams.load.progress import progress_bar
from streams.stack.paths import StackPaths
from streams.verify.compare import TableResult
from streams.verify.report import divergence_lines, results_table

out = Console()


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)


def demo(
    ctx: typer.Context,
    duration: Annotated[float, typer.Option(help="Seconds of load.")] = 30.0,
    rate: Annotated[float, typer.Option(help="Source transactions per second (both sources).")] = 50.0,
    mix: Annotated[str, typer.Option(help="Weights insert:update:delete.")] = "70:25:5",
    seed: Annotated[int, typer.Option(help="Load generator seed.")] = 1,
    verify_timeout: Annotated[float, typer.Option(help="Seconds verify --wait may take.")] = 120.0,
    keep_workers: Annotated[bool, typer.Option(help="Leave the two demo workers running.")] = False,
    skip_setup: Annotated[bool, typer.Option(help="Skip up/migrate/schemas/connectors.")] = False,
) -> None:
    """Start everything, sync customers (PostgreSQL) and orders (MariaDB) into shipping, prove it."""
    settings = settings_of(ctx)
    plan = LoadPlan(rate=rate, duration_s=duration, mix=Mix.parse(mix), seed=seed)
    options = DemoOptions(plan, verify_timeout, keep_workers=keep_workers, skip_setup=skip_setup)

    def on_round(attempt: int, results: list[TableResult]) -> None:
        state = ", ".join(f"{r.table} {r.source_rows}/{r.sink_rows}" for r in results)
        out.print(
            f"verify round {attempt}: {state}{'' if all(r.ok for r in results) else ' (not yet equal)'}"
        )

    try:
        with progress_bar(plan, out) as on_write:
            summary, results = run_demo(settings, options, out.print, on_write, on_round)
    except ChangefeedError as exc:
        Console(stderr=True).print(f"[red]demo failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    out.print(results_table(results))
    for line in divergence_lines(results, 20):
        out.print(line, markup=False)
    out.print(summary_table(summary))
    sink = settings.sink_postgres
    logs = StackPaths(settings.stack.state_dir, settings.stack.cache_dir).logs
    out.print(
        LOOK_AND_STOP.format(host=sink.host, port=sink.port, db=sink.database, user=sink.user, logs=logs)
    )
    if not summary.verified:
        raise typer.Exit(1)
