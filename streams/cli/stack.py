"""`changefeed up | down | status | logs`: the local no-container stack."""

from __future__ import annotations

import subprocess
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.capture import print_capture
from streams.cli.context import settings_of
from streams.errors import StackError
from streams.stack import process, supervisor

console = Console()
err_console = Console(stderr=True)


def _say(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def print_status(rows: list[supervisor.ServiceStatus]) -> None:
    table = Table(title="changefeed local stack")
    for column in ("service", "pid", "port", "state", "uptime", "rss MB"):
        table.add_column(column, justify="right" if column in {"pid", "port", "rss MB"} else "left")
    colour = {"ready": "green", "not ready": "yellow", "stopped": "red"}
    for row in rows:
        table.add_row(
            row.name, str(row.pid or "-"), str(row.port),
            f"[{colour[row.state]}]{row.state}[/]", _duration(row.uptime_s),
            f"{row.rss_mb:.0f}" if row.rss_mb else "-",
        )  # fmt: skip
    console.print(table)


def up(ctx: typer.Context) -> None:
    """Start Kafka, Connect+Debezium, the registry and the databases as local processes."""
    settings = settings_of(ctx)
    started = time.monotonic()
    try:
        rows = supervisor.up(settings, _say)
    except StackError as exc:
        err_console.print(f"[red]changefeed up failed[/red]: {exc}")
        err_console.print("Fix the cause above, then run `changefeed up` again (it resumes).")
        raise typer.Exit(1) from exc
    print_status(rows)
    _say(f"stack ready in {time.monotonic() - started:.1f} s; state in {settings.stack.state_dir.resolve()}")


def down(
    ctx: typer.Context,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the state directory.")] = False,
) -> None:
    """Stop exactly the processes `up` started (graceful, then forced)."""
    supervisor.down(settings_of(ctx), _say, purge=purge)
    _say("stack stopped")


def status(
    ctx: typer.Context,
    capture: Annotated[
        bool, typer.Option("--capture/--no-capture", help="Also check connectors, sources, slots and binlog.")
    ] = True,
) -> None:
    """Services (pid, port, state, uptime, memory), then capture health; exit 1 if down or stalled."""
    settings = settings_of(ctx)
    rows = supervisor.status(settings)
    print_status(rows)
    # A process can be "ready" while capture is stalled (a FAILED task, a source Connect cannot
    # reach): the capture block looks at that, from the same settings.
    healthy = print_capture(console, settings) if capture else True
    if any(row.state != "ready" for row in rows) or not healthy:
        raise typer.Exit(1)


def logs(
    ctx: typer.Context,
    service: Annotated[
        str | None, typer.Argument(help="kafka, connect, registry, source-postgres, ...")
    ] = None,
    lines: Annotated[int, typer.Option("-n", "--lines")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
) -> None:
    """Show a service's log (all services' log files if none is named)."""
    paths = supervisor.context_for(settings_of(ctx)).paths
    if service is None:
        for log in sorted(paths.logs.glob("*.log")):
            console.print(f"{log.stem:16} {log}")
        return
    log = paths.log_file(service)
    if not log.is_file():
        err_console.print(f"no log for {service!r} at {log}; known: "
                          + ", ".join(p.stem for p in sorted(paths.logs.glob('*.log'))))  # fmt: skip
        raise typer.Exit(1)
    if follow:
        subprocess.run(["tail", "-n", str(lines), "-F", str(log)], check=False)
        return
    console.print(process.log_tail(log, lines), markup=False, highlight=False, end="")


def register(app: typer.Typer) -> None:
    for command in (up, down, status, logs, smoke):
        app.command()(command)


def smoke(
    ctx: typer.Context,
    source: Annotated[str, typer.Option(help="postgres or mariadb")] = "postgres",
) -> None:
    """Capture one real change through a throw-away Debezium connector and print it."""
    import json

    from streams.stack.smoke import capture_one_change

    if source not in ("postgres", "mariadb"):
        err_console.print(f"--source must be postgres or mariadb, not {source!r}")
        raise typer.Exit(2)
    settings = settings_of(ctx)
    _say(f"registering a throw-away Debezium {source} connector and inserting a row ...")
    try:
        captured = capture_one_change(settings, supervisor.context_for(settings).paths, source)  # type: ignore[arg-type]  # checked above
    except StackError as exc:
        err_console.print(f"[red]smoke failed[/red]: {exc}")
        raise typer.Exit(1) from exc
    _say(f"change event on [bold]{captured.topic}[/bold], {captured.seconds * 1000:.0f} ms after the insert:")
    console.print_json(json.dumps({"key": captured.key, "value": captured.value}))
