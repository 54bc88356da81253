"""Rich tables for verify results and lag (presentation only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.table import Table

from streams.verify.compare import TableResult
from streams.verify.lag import PartitionLag


def results_table(results: Sequence[TableResult], title: str = "source ≡ sink") -> Table:
    table = Table(title=title)
    table.add_column("table")
    for col in ("source rows", "sink rows", "chunks (bad)", "divergent keys"):
        table.add_column(col, justify="right")
    table.add_column("verdict")
    for r in results:
        verdict = "[green]equal[/green]" if r.ok else f"[red]{r.error or 'DIVERGENT'}[/red]"
        if r.derived:
            verdict += f" [yellow](not compared, gone at the source: {', '.join(r.derived)})[/yellow]"
        table.add_row(
            r.table,
            str(r.source_rows),
            str(r.sink_rows),
            f"{r.chunks} ({r.bad_chunks})",
            str(r.divergent),
            verdict,
        )
    return table


def divergence_lines(results: Sequence[TableResult], limit: int) -> list[str]:
    lines = []
    for r in results:
        for d in r.keys:
            cols = f" columns: {', '.join(d.columns)}" if d.columns else ""
            lines.append(f"{r.table} key={'/'.join(d.key)}: {d.kind.value}{cols}")
        if r.divergent > len(r.keys):
            lines.append(f"{r.table}: … and {r.divergent - len(r.keys)} more (raise --limit, now {limit})")
    return lines


def round_line(attempt: int, results: Sequence[TableResult], lag: Sequence[PartitionLag]) -> str:
    now = datetime.now(UTC)
    behind = sum(p.lag for p in lag)
    oldest = max((p.age_s(now) for p in lag), default=0.0)
    state = ", ".join(
        f"{r.table} {r.source_rows}/{r.sink_rows}{'' if r.ok else ' ✗' + str(r.divergent)}" for r in results
    )
    return f"round {attempt}: {state}; lag {behind} changes, oldest {oldest:.1f} s"


def lag_table(lag: Sequence[PartitionLag], positions: dict[str, str]) -> Table:
    now = datetime.now(UTC)
    table = Table(title="lag (Kafka end offset vs offsets stored in the sink)")
    for col in ("group", "topic", "partition", "seen (end)", "applied", "lag", "oldest unapplied"):
        table.add_column(col)
    for p in lag:
        age = f"{p.age_s(now):.1f} s" if p.lag else "-"
        table.add_row(
            p.group, p.topic, str(p.partition), str(p.end_offset), str(p.applied_offset), str(p.lag), age
        )
    if positions:
        table.caption = "newest applied source position: " + ", ".join(
            f"{t}={pos}" for t, pos in positions.items()
        )
    return table
