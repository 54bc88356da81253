"""`changefeed verify` (the oracle) and `changefeed lag`."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
import typer
from kafka.errors import KafkaError
from rich.console import Console

from streams.cli.capture import print_capture
from streams.cli.context import settings_of
from streams.cli.invariants import invariants
from streams.errors import ConfigError
from streams.project import load_project
from streams.settings import Settings
from streams.sinks.mapping import TableMapping
from streams.sinks.notices import TRUNCATE_IGNORED, load_notices
from streams.verify import (
    VerifyOptions,
    connections,
    measure_lag,
    open_databases,
    resolve_project,
    verify_once,
    verify_wait,
)
from streams.verify.advice import captures_of, ignored_truncate_lines, not_compared_lines, recovery_lines
from streams.verify.lag import applied_positions, topics_for
from streams.verify.report import divergence_lines, lag_table, results_table, round_line

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    # A group whose callback is `verify` itself: `changefeed verify [options]` is unchanged, and
    # `changefeed verify invariants` checks the tables file's [[invariants]].
    group = typer.Typer(invoke_without_command=True)
    group.callback()(verify)
    group.command(name="invariants")(invariants)
    app.add_typer(group, name="verify")
    app.command(name="lag")(lag)


SinkSchema = Annotated[str, typer.Option(help="Sink schema holding the shipping tables.")]


def _mappings(
    schema: str, settings: Settings, sink: psycopg.Connection[Any]
) -> tuple[list[TableMapping], list[str]]:
    try:
        return resolve_project(settings, schema, sink)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _change_topics(settings: Settings, mappings: list[TableMapping]) -> list[str]:
    """The topics the project's workers consume (as the worker derives them) that exist yet."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None)
    try:
        existing = consumer.topics()
    finally:
        consumer.close()
    wanted = set(settings.pipeline.topics or load_project(settings).subscriptions)
    return sorted((wanted & existing) | set(topics_for(mappings, existing)))


def verify(
    ctx: typer.Context,
    wait: Annotated[float | None, typer.Option(help="Poll until equal or this many seconds pass.")] = None,
    limit: Annotated[int, typer.Option(help="Print at most this many divergent keys per table.")] = 20,
    chunk_size: Annotated[int, typer.Option(help="Leading-key range per checksum chunk.")] = 1000,
    sink_schema: SinkSchema = "public",
) -> None:
    """Compare every mapped source table with its materialized table; exit 1 on any divergence."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_of(ctx)
    options = VerifyOptions(chunk_size=chunk_size, limit=limit)
    with open_databases(settings) as dbs:
        mappings, pending = _mappings(sink_schema, settings, dbs.sink)
        if wait is None:
            results = verify_once(dbs, mappings, options, pending)
        else:
            topics = _change_topics(settings, mappings)

            def on_round(attempt: int, results: list[object]) -> None:
                try:
                    lag = measure_lag(settings.kafka.bootstrap_servers, dbs.sink, topics, sink_schema)
                except KafkaError:
                    lag = []
                out.print(round_line(attempt, results, lag))  # type: ignore[arg-type]  # list[TableResult]

            results = verify_wait(
                dbs,
                lambda: _mappings(sink_schema, settings, dbs.sink),
                options,
                wait,
                on_round,  # type: ignore[arg-type]  # list[TableResult]
            )
        ignored = load_notices(dbs.sink, sink_schema, TRUNCATE_IGNORED)  # why rows were kept
    out.print(results_table(results))
    for line in divergence_lines(results, limit):
        out.print(line, markup=False)
    for line in not_compared_lines(results):  # a dropped source column: said, never silent
        out.print(line, markup=False, style="yellow", soft_wrap=True)
    owners = captures_of(settings, [r.source for r in results if r.source and not r.ok])
    for line in recovery_lines(results, owners):  # unwrapped: the command must copy whole
        out.print(line, markup=False, style="yellow", soft_wrap=True)
    for line in ignored_truncate_lines(results, ignored):
        out.print(line, markup=False, style="yellow", soft_wrap=True)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def lag(ctx: typer.Context, sink_schema: SinkSchema = "public") -> None:
    """Per topic partition: newest offset seen vs applied, and the age of the oldest unapplied change."""
    settings = settings_of(ctx)
    # Only the sink: lag must still answer (and report below) while a source is down.
    with connections.postgres(settings.sink_postgres) as sink:
        mappings, _ = _mappings(sink_schema, settings, sink)
        topics = _change_topics(settings, mappings)
        rows = measure_lag(settings.kafka.bootstrap_servers, sink, topics, sink_schema)
        positions = applied_positions(sink, mappings)
    out.print(lag_table(rows, positions))
    # Kafka vs sink reads 0 when capture itself is stalled (nothing new reaches Kafka): say so.
    if not print_capture(out, settings):
        raise typer.Exit(1)
