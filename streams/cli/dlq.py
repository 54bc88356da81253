"""``changefeed dlq show|replay``: inspect and re-drive a source topic's dead letters."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.context import settings_of
from streams.pipeline import dlq_replay as dlq

app = typer.Typer(help="Dead-letter topics (<topic>.dlq).", no_args_is_help=True)
out = Console()
Topic = Annotated[str, typer.Argument(help="The source topic, e.g. customers.public.customers.")]


@app.command()
def show(
    ctx: typer.Context,
    topic: Topic,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per dead letter.")] = False,
) -> None:
    """Dead letters with the error and where they came from."""
    letters = list(dlq.read(settings_of(ctx).kafka.bootstrap_servers, topic, limit))
    if as_json:
        rows = [
            {"dlq_offset": d.dlq_offset, **d.why, "bytes": len(d.value or b""), "form": _form(d.why)}
            for d in letters
        ]
        out.print_json(json.dumps(rows))
        return
    grid = Table("dlq offset", "source", "error", "message", "bytes", "form")
    for d in letters:
        why = d.why
        source = f"{why.get('source_topic')}[{why.get('source_partition')}]@{why.get('source_offset')}"
        grid.add_row(
            str(d.dlq_offset), source, why.get("error_class", "?"), why.get("error_message", "")[:120],
            str(len(d.value or b"")), _form(why),
        )  # fmt: skip
    out.print(grid)


def _form(why: dict[str, str]) -> str:
    if "payload_dropped" in why:
        return "payload dropped"
    if "truncated" in why:
        return f"truncated (of {why['truncated']} bytes)"
    return "null key+value" if "null_value" in why else "as it came"


@app.command()
def replay(
    ctx: typer.Context,
    topic: Topic,
    offset: Annotated[list[int] | None, typer.Option("--offset", help="Only these DLQ offsets.")] = None,
) -> None:
    """Send dead letters back to their source topic (after fixing what made them fail)."""
    done = dlq.replay(settings_of(ctx).kafka, topic, set(offset) if offset else None)
    out.print(f"replayed {done.sent} dead letter(s) to {topic}")
    if done.skipped:
        out.print(
            f"skipped {done.skipped} that do not hold their record as it came (no key and no value,"
            " truncated or dropped payload: see `changefeed dlq show`)"
        )
