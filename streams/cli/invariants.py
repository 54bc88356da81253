"""`changefeed verify invariants`: the tables file's ``[[invariants]]`` checked on the sink."""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from streams.cli.context import settings_of
from streams.project.tables import load_tables
from streams.verify import connections
from streams.verify.invariants import InvariantReport, watch

out = Console()
err = Console(stderr=True)


def invariants_table(report: InvariantReport) -> Table:
    table = Table(title=f"invariants in {report.schema!r}: {report.rounds} rounds in {report.seconds:.1f} s")
    table.add_column("invariant")
    table.add_column("rounds", justify="right")
    table.add_column("violating rounds", justify="right")
    table.add_column("distinct keys", justify="right")
    for t in report.tallies:
        if t.error is not None:
            table.add_row(escape(t.name), str(t.rounds), "[red]error[/red]", "[red]not checked[/red]")
            continue
        style = "green" if t.ok else "red"
        table.add_row(
            escape(t.name),
            str(t.rounds),
            f"[{style}]{t.violating_rounds}[/{style}]",
            f"[{style}]{len(t.keys)}[/{style}]",
        )
    return table


def invariants(
    ctx: typer.Context,
    watch_s: Annotated[
        float, typer.Option("--watch", help="Check repeatedly for this many seconds (0: one round).")
    ] = 0.0,
    interval_ms: Annotated[int, typer.Option(help="Pause between rounds.", min=0)] = 200,
    sink_schema: Annotated[str, typer.Option(help="Sink schema holding the shipping tables.")] = "public",
) -> None:
    """Run the tables file's invariants on the sink, all in one snapshot per round; exit 1 on any
    violation, 2 when an invariant cannot run."""
    settings = settings_of(ctx)
    specs = load_tables(settings.project.tables).invariants
    if not specs:
        err.print(
            f"no [[invariants]] in {settings.project.tables}: declare a query returning the rows that"
            " break a rule (see the README's 'Invariants of your read model')"
        )
        raise typer.Exit(2)
    try:
        with connections.postgres(settings.sink_postgres, "changefeed-invariants") as sink:
            report = watch(sink, specs, sink_schema, watch_s, interval_ms)
    except psycopg.OperationalError as exc:
        why = escape(str(exc).strip())
        err.print(f"[red]cannot read the sink:[/red] {why}; is it up (changefeed status)?")
        raise typer.Exit(2) from exc
    out.print(invariants_table(report))
    for t in report.tallies:  # unwrapped: a violating row is read (and copied) whole
        for example in t.examples:
            out.print(f"violates {t.name!r}: {example}", markup=False, style="red", soft_wrap=True)
    for t in report.errors:
        out.print(f"{t.name}: {t.error}", markup=False, style="red", soft_wrap=True)
    if report.errors:
        raise typer.Exit(2)
    if not report.ok:
        raise typer.Exit(1)
