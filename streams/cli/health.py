"""``changefeed health``: exit 1 with one line per failing check (scripts, Kubernetes probes)."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli.context import settings_of
from streams.dashboard.checks import Limits, failing
from streams.dashboard.collect import look


def register(app: typer.Typer) -> None:
    app.command(name="health")(health)


def health(
    ctx: typer.Context,
    max_lag: Annotated[
        float, typer.Option("--max-lag", help="Seconds the oldest unapplied change may wait.")
    ] = 60.0,
    max_slot_bytes: Annotated[int, typer.Option(help="WAL a replication slot may retain.")] = 1024**3,
    min_workers: Annotated[int, typer.Option(help="Workers the group must have.")] = 1,
    sink_schema: Annotated[str | None, typer.Option(help="Sink schema (default: the settings').")] = None,
) -> None:
    """Connectors RUNNING, lag, slot retention, workers in the group, every service readable."""
    snap = look(settings_of(ctx), schema=sink_schema)
    lines = failing(snap, Limits(max_lag, max_slot_bytes, min_workers))
    for line in lines:
        typer.echo(line, err=True)
    if lines:
        raise typer.Exit(1)
    typer.echo(
        f"ok: {len(snap.connectors)} connectors, {len(snap.tables)} tables, {len(snap.workers)} workers"
    )
