"""`changefeed verify` (the oracle) and `changefeed lag`."""

from __future__ import annotations

from typing import Annotated

import typer
from kafka.errors import KafkaError
from rich.console import Console

from streams.cli.capture import print_capture
from streams.cli.context import settings_of
from streams.errors import ConfigError
from streams.settings import Settings
from streams.sinks.mapping import TableMapping
from streams.verify import (
    VerifyOptions,
    connections,
    measure_lag,
    open_databases,
    shipping_mappings,
    verify_once,
    verify_wait,
)
from streams.verify.lag import applied_positions, topics_for
from streams.verify.report import divergence_lines, lag_table, results_table, round_line

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command(name="verify")(verify)
    app.command(name="lag")(lag)


SinkSchema = Annotated[str, typer.Option(help="Sink schema holding the shipping tables.")]


def _mappings(schema: str, settings: Settings) -> list[TableMapping]:
    try:
        return shipping_mappings(schema, settings.pipeline.extra_columns)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _change_topics(settings: Settings, mappings: list[TableMapping]) -> list[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None)
    try:
        return topics_for(mappings, consumer.topics())
    finally:
        consumer.close()


def verify(
    ctx: typer.Context,
    wait: Annotated[float | None, typer.Option(help="Poll until equal or this many seconds pass.")] = None,
    limit: Annotated[int, typer.Option(help="Print at most this many divergent keys per table.")] = 20,
    chunk_size: Annotated[int, typer.Option(help="Leading-key range per checksum chunk.")] = 1000,
    sink_schema: SinkSchema = "public",
) -> None:
    """Compare every mapped source table with its materialized table; exit 1 on any divergence."""
    settings = settings_of(ctx)
    mappings = _mappings(sink_schema, settings)
    options = VerifyOptions(chunk_size=chunk_size, limit=limit)
    with open_databases(settings) as dbs:
        if wait is None:
            results = verify_once(dbs, mappings, options)
        else:
            topics = _change_topics(settings, mappings)

            def on_round(attempt: int, results: list[object]) -> None:
                try:
                    lag = measure_lag(settings.kafka.bootstrap_servers, dbs.sink, topics)
                except KafkaError:
                    lag = []
                out.print(round_line(attempt, results, lag))  # type: ignore[arg-type]  # list[TableResult]

            results = verify_wait(dbs, mappings, options, wait, on_round)  # type: ignore[arg-type]
    out.print(results_table(results))
    for line in divergence_lines(results, limit):
        out.print(line, markup=False)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def lag(ctx: typer.Context, sink_schema: SinkSchema = "public") -> None:
    """Per topic partition: newest offset seen vs applied, and the age of the oldest unapplied change."""
    settings = settings_of(ctx)
    mappings = _mappings(sink_schema, settings)
    topics = _change_topics(settings, mappings)
    # Only the sink: lag must still answer (and report below) while a source is down.
    with connections.postgres(settings.sink_postgres) as sink:
        rows = measure_lag(settings.kafka.bootstrap_servers, sink, topics, sink_schema)
        positions = applied_positions(sink, mappings)
    out.print(lag_table(rows, positions))
    # Kafka vs sink reads 0 when capture itself is stalled (nothing new reaches Kafka): say so.
    if not print_capture(out, settings):
        raise typer.Exit(1)
