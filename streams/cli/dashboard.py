"""``changefeed dashboard``: the live page (streams.dashboard), on loopback by default."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.cli.context import settings_of
from streams.dashboard.server import DEFAULT_PORT, Dashboard, default_metrics_urls, serve


def register(app: typer.Typer) -> None:
    app.command(name="dashboard")(dashboard)


def dashboard(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Listen address (loopback: nothing else can reach it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = DEFAULT_PORT,
    interval: Annotated[float, typer.Option(help="Seconds between two looks at the stack.")] = 2.0,
    metrics: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics", help="A worker's /metrics URL (repeat); default: this host's worker ports."
        ),
    ] = None,
    sink_schema: Annotated[str | None, typer.Option(help="Sink schema (default: the settings').")] = None,
) -> None:
    """Connectors, tables (rate, latency, lag, conflicts, dead letters), sources, workers, schemas."""
    settings = settings_of(ctx)
    urls = metrics if metrics else default_metrics_urls(settings)
    board = Dashboard(settings, interval, urls, sink_schema)
    serve(board, host, port, on_ready=lambda url: typer.echo(f"dashboard on {url} (Ctrl-C stops it)"))
