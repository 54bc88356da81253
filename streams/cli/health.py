"""``changefeed health``: exit 1 with one line per failing check (scripts, Kubernetes probes)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from streams.cli.context import settings_of
from streams.dashboard.atomic import Watch, pending, warnings
from streams.dashboard.checks import Limits, failing
from streams.dashboard.collect import Snapshot, look, scrape
from streams.dashboard.server import default_metrics_urls


def register(app: typer.Typer) -> None:
    app.command(name="health")(health)


def watch_atomic(snap: Snapshot, urls: list[str], watch_s: float) -> None:
    """Judge the atomic sources; while one looks stuck (unowned, or buffered without a release)
    but is not yet past its limit, look again every second, up to ``watch_s``: one scrape cannot
    tell a handover from a stall."""
    watch, deadline = Watch(), time.monotonic() + watch_s
    snap.atomic = watch.judge(time.monotonic(), snap.atomic_declared, snap.atomic_readings)
    while pending(watch, snap.atomic) and time.monotonic() < deadline:
        time.sleep(1.0)
        snap.atomic_readings = {}
        scrape(urls, snap)
        snap.atomic = watch.judge(time.monotonic(), snap.atomic_declared, snap.atomic_readings)


def health(
    ctx: typer.Context,
    max_lag: Annotated[
        float, typer.Option("--max-lag", help="Seconds the oldest unapplied change may wait.")
    ] = 60.0,
    max_slot_bytes: Annotated[int, typer.Option(help="WAL a replication slot may retain.")] = 1024**3,
    min_workers: Annotated[int, typer.Option(help="Workers the group must have.")] = 1,
    sink_schema: Annotated[str | None, typer.Option(help="Sink schema (default: the settings').")] = None,
    metrics: Annotated[
        list[str] | None,
        typer.Option(help="A worker's /metrics URL (repeat; default: this host's metrics ports)."),
    ] = None,
    atomic_watch: Annotated[
        float,
        typer.Option(
            help="Seconds to keep looking at an atomic source that seems unowned or stuck before"
            " judging it (only then; a healthy one answers at once)."
        ),
    ] = 65.0,
) -> None:
    """Connectors RUNNING, lag, slot retention, workers in the group, atomic sources owned and
    releasing, every service readable."""
    settings = settings_of(ctx)
    snap = look(settings, schema=sink_schema)
    if snap.atomic_declared:  # only then are the workers' metrics needed
        urls = list(metrics) if metrics else default_metrics_urls(settings)
        scrape(urls, snap)
        watch_atomic(snap, urls, atomic_watch)
    lines = failing(snap, Limits(max_lag, max_slot_bytes, min_workers))
    for line in warnings(snap.atomic):
        typer.echo(f"warn: {line}", err=True)
    for line in lines:
        typer.echo(line, err=True)
    if lines:
        raise typer.Exit(1)
    typer.echo(
        f"ok: {len(snap.connectors)} connectors, {len(snap.tables)} tables, {len(snap.workers)} workers"
        + (f", {len(snap.atomic)} atomic sources" if snap.atomic else "")
    )
