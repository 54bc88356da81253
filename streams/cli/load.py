"""`changefeed load`: write realistic changes to both source services at a fixed rate."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from streams.cli.context import settings_of
from streams.load import LoadPlan, Mix, run_load
from streams.load.progress import progress_bar, report_table

out = Console()


def register(app: typer.Typer) -> None:
    app.command(name="load")(load)


def load(
    ctx: typer.Context,
    rate: Annotated[
        float, typer.Option(help="Source transactions per second, both sources together.")
    ] = 50.0,
    duration: Annotated[float, typer.Option(help="Seconds to run.")] = 30.0,
    mix: Annotated[str, typer.Option(help="Weights insert:update:delete.")] = "70:25:5",
    seed: Annotated[int, typer.Option(help="Same seed + same starting data = same writes.")] = 1,
    hot_keys: Annotated[
        int, typer.Option(help="Concentrate updates/deletes on this many keys (0: off).")
    ] = 0,
    source: Annotated[list[str] | None, typer.Option(help="Limit to customers and/or orders.")] = None,
    tokens: Annotated[
        bool, typer.Option(help="Take a consistency token after every commit; print the last per source.")
    ] = False,
) -> None:
    """Insert, update and delete customers and orders (orders with lines and outbox, one tx)."""
    try:
        plan = LoadPlan(
            rate=rate, duration_s=duration, mix=Mix.parse(mix), seed=seed, hot_keys=hot_keys,
            sources=tuple(source) if source else LoadPlan().sources, tokens=tokens,
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with progress_bar(plan, out) as on_write:
        report = run_load(settings_of(ctx), plan, on_write)
    out.print(report_table(report))
    last = {w.source: w.token for w in report.writes if w.token}
    for name, token in sorted(last.items()):  # `changefeed wait` on these: the sink has it all
        out.print(f"last token {name}: {token}", highlight=False, soft_wrap=True)
