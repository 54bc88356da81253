"""The load generator's rich progress bar and its closing table."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.load.runner import LoadPlan, LoadReport
from streams.load.written import LoadTally, Written


@contextmanager
def progress_bar(plan: LoadPlan, console: Console) -> Iterator[Callable[[Written], None]]:
    """Yield an ``on_write`` callback that advances a bar showing counts and the achieved rate."""
    tally = LoadTally()
    columns = (
        TextColumn("[bold]load[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[rate]:>7.1f} tx/s  {task.fields[detail]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("load", total=plan.operations, rate=0.0, detail="")

        first: list[float] = []

        def on_write(w: Written) -> None:
            tally.add(w)
            now = time.monotonic()
            first[:] = first or [now]
            elapsed = now - first[0]
            detail = " ".join(f"{s[:4]}:{o[0]}={n}" for (s, o), n in sorted(tally.transactions.items()))
            progress.update(
                task,
                advance=1,
                rate=(tally.total - 1) / elapsed if elapsed else 0.0,
                detail=detail + f" outbox={tally.outbox}",
            )

        yield on_write


def report_table(report: LoadReport) -> Table:
    table = Table(title=f"load: seed {report.plan.seed}, mix {report.plan.mix}")
    table.add_column("source")
    table.add_column("insert", justify="right")
    table.add_column("update", justify="right")
    table.add_column("delete", justify="right")
    t = report.tally.transactions
    for source in report.plan.sources:
        table.add_row(source, *(str(t[(source, op)]) for op in ("insert", "update", "delete")))
    rows = ", ".join(f"{name}={n}" for name, n in sorted(report.tally.rows.items()))
    table.caption = (
        f"{report.tally.total} transactions in {report.elapsed_s:.1f} s ({report.achieved_rate:.1f}/s,"
        f" target {report.plan.rate:g}/s); rows changed: {rows}; outbox rows: {report.tally.outbox}"
    )
    return table
