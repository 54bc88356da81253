"""Root of the ``changefeed`` command: global options and the command groups."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from streams.cli import (
    connectors,
    consistency,
    demo,
    dlq,
    load,
    prune,
    schemas,
    services,
    sink,
    stack,
    verify,
    worker,
)
from streams.cli.context import CliState
from streams.cli.dashboard import register as register_dashboard
from streams.cli.health import register as register_health
from streams.errors import ConfigError

app = typer.Typer(
    name="changefeed",
    help="Change-data-capture: Debezium -> Kafka -> Faust -> downstream tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack.register(app)
app.add_typer(schemas.app, name="schemas")
app.add_typer(connectors.app, name="connectors")
app.add_typer(services.app, name="services")
app.add_typer(sink.app, name="sink")
worker.register(app)
prune.register(app)
app.add_typer(dlq.app, name="dlq")
load.register(app)
verify.register(app)
demo.register(app)
register_dashboard(app)
register_health(app)
consistency.register(app)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (default ./changefeed.toml).")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Where the local stack keeps data and logs.")
    ] = None,
) -> None:
    if config is not None:
        # The settings loader reads the file name from here; this is the CLI edge.
        os.environ["CHANGEFEED_CONFIG"] = str(config)
    overrides: dict[str, dict[str, object]] = {}
    if state_dir is not None:
        overrides["stack"] = {"state_dir": state_dir}
    ctx.obj = CliState(overrides=overrides)


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # a setting, the tables file or a connector file says what to fix
        Console(stderr=True).print(f"[red]configuration error:[/red] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from None
