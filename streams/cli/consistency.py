"""`changefeed serve`, `changefeed wait TOKEN`, `changefeed token --source S`: read your writes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import psycopg
import pymysql
import typer
from rich.console import Console

from streams.cli.context import settings_of
from streams.consistency.drivers import mariadb_current, postgres_current
from streams.consistency.sources import project_sources
from streams.consistency.token import Kind, TokenError, parse_token
from streams.consistency.wait import Status
from streams.settings import Settings
from streams.sinks import conninfo_from

out = Console()
err = Console(stderr=True)
DEFAULT_ADDRESS = "127.0.0.1:50151"  # streams.serve.server's; not imported so other commands skip gRPC
EXIT = {Status.APPLIED: 0, Status.TIMEOUT: 1, Status.UNKNOWN_SOURCE: 2}


def register(app: typer.Typer) -> None:
    app.command(name="serve")(serve)
    app.command(name="wait")(wait)
    app.command(name="token")(token)


def serve(
    ctx: typer.Context,
    address: Annotated[
        str, typer.Option(help="host:port to listen on; loopback unless you say otherwise (no TLS, no auth).")
    ] = DEFAULT_ADDRESS,
    poll_interval: Annotated[float, typer.Option(help="Fallback poll (s) when no NOTIFY arrives.")] = 0.5,
) -> None:
    """Run the read-your-writes gRPC service (WaitApplied, ReadAfter) until SIGINT/SIGTERM."""
    from streams.serve.runtime import build_hub, declared_tables, sink_conninfo
    from streams.serve.server import start_server

    settings = settings_of(ctx)

    async def run() -> None:
        hub = build_hub(settings, poll_interval=poll_interval)
        server, port = await start_server(hub, declared_tables(settings), sink_conninfo(settings), address)
        host = address.rpartition(":")[0]
        out.print(f"serving {', '.join(sorted(hub.sources))} on {host}:{port}", highlight=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(grace=1.0)
        await hub.stop()

    asyncio.run(run())


def wait(
    ctx: typer.Context,
    token_text: Annotated[str, typer.Argument(metavar="TOKEN", help="A consistency token.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 10.0,
) -> None:
    """Wait until the sink applied TOKEN: exit 0 applied, 1 timeout, 2 unknown source or bad token."""
    settings = settings_of(ctx)
    try:
        parsed = parse_token(token_text)
    except TokenError as exc:
        err.print(f"malformed token: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from None

    from streams.serve.runtime import build_hub

    async def run() -> tuple[Status, str, str]:
        hub = build_hub(settings, poll_interval=0.2)
        await hub.start()
        try:
            result = await hub.wait(parsed, timeout)
        finally:
            await hub.stop()
        return result.status, result.applied, result.message

    status, applied, message = asyncio.run(run())
    out.print(f"{status.value} (applied {applied}){': ' + message if message else ''}", highlight=False)
    raise typer.Exit(EXIT[status])


def token(
    ctx: typer.Context,
    source: Annotated[str, typer.Option(help="The source (connector name), e.g. customers.")],
) -> None:
    """Print the source's current position as a token: a wait for it covers every commit so far."""
    settings = settings_of(ctx)
    sources = project_sources(settings, ask_servers=False)
    if source not in sources:
        err.print(f"no source {source!r} (known: {', '.join(sorted(sources))})", highlight=False)
        raise typer.Exit(2)
    out.print(str(current_token(settings, source, sources[source].kind)), highlight=False, soft_wrap=True)


def current_token(settings: Settings, source: str, kind: Kind) -> object:
    if kind is Kind.POSTGRES:
        with psycopg.connect(conninfo_from(settings.source_postgres), autocommit=True) as conn:
            return postgres_current(conn, source)
    m = settings.source_mariadb
    conn = pymysql.connect(
        host=m.host, port=m.port, user=m.user, password=m.password.get_secret_value(), autocommit=True
    )
    with contextlib.closing(conn):
        return mariadb_current(conn, source)
