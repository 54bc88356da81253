"""The demo's closing summary: what flowed, how fast, and whether the sink equals the sources."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.markup import escape
from rich.table import Table

from streams.demo.bus import BusSummary
from streams.demo.latency import LatencyStats
from streams.demo.offsets import TopicCounts
from streams.demo.ryw import RywStats
from streams.verify.invariants import InvariantReport


@dataclass(frozen=True)
class DemoSummary:
    load_transactions: int
    load_seconds: float
    counts: TopicCounts
    rows_applied: int  # row writes in the sink during the demo (audit entries)
    rows_now: dict[str, int]  # current row count per sink table
    conflicts: int
    latency: LatencyStats
    stages: dict[str, LatencyStats]  # measure.by_stage: capture, apply, each sink table
    pipeline_seconds: float  # first source write → last sink commit
    verified: bool
    total_seconds: float
    bus: BusSummary | None = None  # the event bus's part (None: the demo ran without it)
    ryw: RywStats | None = None  # read-your-writes pairs during the load (streams.demo.ryw)
    # The tables file's invariants (streams.demo.invariants): rounds from load start to verify's
    # pass, and one round on the converged sink. None: the project declares none.
    invariants: InvariantReport | None = None
    invariants_after: InvariantReport | None = None
    invariants_error: str = ""
    invariants_mode: str = "per-change"  # how the sources applied transactions (the tables file)
    invariants_ignored: int = 0  # keys violating before the load (a baseline round): not counted

    @property
    def throughput(self) -> float:
        return self.counts.captured / self.pipeline_seconds if self.pipeline_seconds > 0 else 0.0


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f} ms"


_STAGE_LABELS = {"capture": "capture: commit → Debezium", "apply": "apply: Debezium → sink"}


def _percentiles(st: LatencyStats) -> str:
    return f"{_ms(st.p50_ms)} / {_ms(st.p95_ms)} / {_ms(st.p99_ms)}"


def _bus_rows(b: BusSummary | None) -> list[tuple[str, str]]:
    if b is None:
        return []
    return [
        ("bus: events handled (notifications)", f"{b.handled} ({b.notifications} notifications in all)"),
        ("bus: duplicates suppressed (ledger)", str(b.duplicates)),
        ("bus: bridged to JetStream / Redis", f"{b.jetstream_added} / {b.redis_added}"),
    ]


def _invariant_rows(s: DemoSummary) -> list[tuple[str, str]]:
    if s.invariants_error:
        return [("invariants during load", f"[red]not checked: {escape(s.invariants_error[:60])}[/red]")]
    if s.invariants is None:
        return []
    during = s.invariants
    label = f"invariants during load ({escape(s.invariants_mode)})"
    rows = [(label, f"{during.rounds} rounds in {during.seconds:.0f} s")]
    if s.invariants_ignored:
        rows.append(("  violating before the load (not counted)", f"{s.invariants_ignored} keys"))
    for t in during.tallies:
        value = t.error[:60] if t.error else f"{t.violating_rounds} rounds, {len(t.keys)} keys"
        rows.append((f"  violated: {escape(t.name)}", escape(value)))
    after = s.invariants_after
    if after is not None:
        rows.append(("invariants after verify", "[green]PASS[/green]" if after.ok else "[red]FAIL[/red]"))
    return rows


def summary_table(s: DemoSummary) -> Table:
    table = Table(title="changefeed demo", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("source transactions (load)", f"{s.load_transactions} in {s.load_seconds:.1f} s"),
        ("change events captured (Debezium)", str(s.counts.captured)),
        ("outbox events routed", str(s.counts.outbox)),
        ("domain events published", str(s.counts.domain)),
        ("rows materialized (sink writes)", str(s.rows_applied)),
        ("sink rows now", ", ".join(f"{t}={n}" for t, n in s.rows_now.items())),
        ("conflicts (version guard)", str(s.conflicts)),
        ("dead letters", str(s.counts.dead_letters)),
        (
            "latency p50 / p95 / p99",
            _percentiles(s.latency),
        ),
        (
            "latency max (samples, unmatched)",
            f"{_ms(s.latency.max_ms)} ({s.latency.measured}, {s.latency.unmatched})",
        ),
        ("  left out: whole-second clock", f"{s.latency.imprecise} MariaDB deletes and lines"),
        *((f"  {_STAGE_LABELS.get(name, name)}", _percentiles(st)) for name, st in s.stages.items()),
        ("throughput (captured / pipeline time)", f"{s.throughput:,.1f} events/s"),
        *_bus_rows(s.bus),
        *(
            [
                (
                    "read-your-writes pairs (stale, timeouts)",
                    f"{s.ryw.pairs} ({s.ryw.stale}, {s.ryw.timeouts})",
                ),
                ("  wait p99 (commit → APPLIED read)", s.ryw.error[:60] or _ms(s.ryw.p99_ms)),
            ]
            if s.ryw is not None
            else []
        ),
        *_invariant_rows(s),
        ("verify (source ≡ sink)", "[green]PASS[/green]" if s.verified else "[red]FAIL[/red]"),
        ("demo wall time", f"{s.total_seconds:.0f} s"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table


LOOK_AND_STOP = """\
The stack keeps running. Look at the tables:
  psql "host={host} port={port} dbname={db} user={user}" -c 'SELECT * FROM customer_directory LIMIT 5'
  psql "host={host} port={port} dbname={db} user={user}" -c 'SELECT * FROM order_view LIMIT 5'
  changefeed verify   changefeed lag   changefeed status   changefeed connectors status
Demo worker logs: {logs}
Stop everything: changefeed down   (or `make down`)"""
