"""The capture-health block `changefeed status` and `changefeed lag` print (presentation only)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from streams.connect.health import CaptureHealth, gather, human_bytes
from streams.settings import Settings

_STYLE = {
    "RUNNING": "green",
    "FAILED": "red",
    "PAUSED": "yellow",
    "STOPPED": "yellow",
    "UNASSIGNED": "yellow",
}


def _styled(state: str) -> str:
    style = _STYLE.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def capture_table(health: CaptureHealth) -> Table:
    table = Table("kind", "name", "state", title="capture (sources → Connect → Kafka)")
    table.add_column("detail", overflow="fold")
    for s in health.sources:
        state = "[green]reachable[/green]" if s.ok else "[red]UNREACHABLE[/red]"
        table.add_row("source", s.name, state, s.address if s.ok else escape(f"{s.address}: {s.error}"))
    if health.connect_error:
        table.add_row("connect", "-", "[red]UNREACHABLE[/red]", escape(health.connect_error))
    for c in health.connectors:
        tasks = ", ".join(f"{i}={_styled(st)}" for i, st in c.tasks) or "no tasks"
        detail = escape("\n".join(c.failures)) if c.failures else f"tasks {tasks}"
        table.add_row("connector", c.name, _styled("FAILED" if c.failed else c.state), detail)
    for slot in health.slots:
        state = "[green]active[/green]" if slot.active else "[yellow]inactive[/yellow]"
        if slot.problem:
            state = "[red]" + ("LOST" if slot.wal_status == "lost" else "inactive") + "[/red]"
        table.add_row(
            "slot", slot.slot, state,
            f"retains {human_bytes(slot.retained_bytes)} of WAL, {human_bytes(slot.unconfirmed_bytes)}"
            f" unconfirmed (wal_status {slot.wal_status or '-'})",
        )  # fmt: skip
    for b in health.binlogs:
        behind = "purged" if b.behind_bytes is None else human_bytes(b.behind_bytes)
        table.add_row(
            "binlog", b.connector, "[red]behind[/red]" if b.problem else "[green]following[/green]",
            f"connector {b.connector_file}:{b.connector_pos} vs server {b.server_file}:{b.server_pos}"
            f" ({behind} behind)",
        )  # fmt: skip
    return table


def print_capture(console: Console, settings: Settings) -> bool:
    """Print the block and the problems; True when capture is healthy (nothing failed or unreachable)."""
    health = gather(settings)
    console.print(capture_table(health))
    for note in health.notes:
        console.print(f"[dim]{escape(note)}[/dim]", highlight=False)
    for warning in health.warnings():
        console.print(f"[yellow]held:[/yellow] {escape(warning)}", highlight=False)
    problems = health.problems()
    for problem in problems:
        console.print(f"[red]STALLED:[/red] {escape(problem)}", highlight=False, soft_wrap=True)
    if problems:
        console.print(
            "Capture is stalled: nothing new reaches Kafka, so lag can read 0 while the sink falls behind."
            " See README → Troubleshooting; `changefeed connectors heal` restarts transient failures.",
            highlight=False,
        )
    return not problems
