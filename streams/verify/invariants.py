"""The invariant checker: the tables file's ``[[invariants]]`` run against the sink, repeatedly.

Each round runs every invariant in ONE read-only ``REPEATABLE READ`` transaction, so all of
them see the same snapshot of the sink: what any reader could have seen at that moment. A row an
invariant's query returns is a violation; its leading ``key_columns`` values name it, so a key
broken in many rounds counts once among the distinct keys. Engine-free: it needs only the sink.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from streams.project.invariants import InvariantSpec

EXAMPLES = 3  # violating rows kept per invariant, the first ones seen
STATEMENT_TIMEOUT_MS = 30_000  # one invariant's query; a runaway query fails, it does not hang


@dataclass
class InvariantTally:
    name: str
    rounds: int = 0
    violating_rounds: int = 0
    violations: int = 0  # violating rows summed over rounds
    keys: set[tuple[str, ...]] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)
    error: str | None = None  # the query failed: the invariant is not checked
    # Keys a baseline round found violating (e.g. source rows that break the rule themselves):
    # not counted, so a run measures what its own load shows.
    ignored: frozenset[tuple[str, ...]] = frozenset()

    @property
    def ok(self) -> bool:
        return self.error is None and self.violating_rounds == 0


@dataclass
class InvariantReport:
    schema: str
    tallies: list[InvariantTally]
    rounds: int = 0
    seconds: float = 0.0

    @property
    def violating_rounds(self) -> int:
        return max((t.violating_rounds for t in self.tallies), default=0)

    @property
    def errors(self) -> list[InvariantTally]:
        return [t for t in self.tallies if t.error is not None]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tallies)


def render(spec: InvariantSpec, schema: str) -> sql.Composed:
    """The invariant's query with ``{schema}`` as a quoted identifier (never pasted text)."""
    return sql.SQL(spec.sql).format(schema=sql.Identifier(schema))


def _text(value: Any) -> str:
    return "NULL" if value is None else str(value)


def _example(names: Sequence[str], row: Sequence[Any]) -> str:
    return " ".join(f"{n}={_text(v)}" for n, v in zip(names, row, strict=False))


def _record(tally: InvariantTally, spec: InvariantSpec, names: list[str], rows: list[Any]) -> None:
    tally.rounds += 1
    if tally.ignored:
        rows = [r for r in rows if tuple(_text(v) for v in r[: spec.key_columns]) not in tally.ignored]
    if not rows:
        return
    tally.violating_rounds += 1
    tally.violations += len(rows)
    for row in rows:
        key = tuple(_text(v) for v in row[: spec.key_columns])
        if key not in tally.keys and len(tally.examples) < EXAMPLES:
            tally.examples.append(_example(names, row))
        tally.keys.add(key)


def check_round(
    conn: psycopg.Connection[Any], specs: Sequence[InvariantSpec], schema: str, report: InvariantReport
) -> None:
    """One round: every invariant in one read-only REPEATABLE READ snapshot of the sink.

    The connection's own isolation level and read-only flag are restored afterwards."""
    conn.rollback()
    saved = conn.isolation_level, conn.read_only
    conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
    try:
        _round(conn, specs, schema, report)
    finally:
        conn.rollback()
        conn.isolation_level, conn.read_only = saved
    report.rounds += 1


def _round(
    conn: psycopg.Connection[Any], specs: Sequence[InvariantSpec], schema: str, report: InvariantReport
) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(STATEMENT_TIMEOUT_MS)))
        for spec, tally in zip(specs, report.tallies, strict=True):
            if tally.error is not None:
                continue  # a broken query stays broken; said once, not every round
            try:
                with conn.transaction(), conn.cursor() as cur:  # a savepoint: one failure spares the rest
                    cur.execute(render(spec, schema))
                    names = [d.name for d in cur.description or ()]
                    rows = cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                raise  # the sink went away: not this invariant's fault
            except psycopg.Error as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                tally.error = (
                    f"{first} — fix this invariant's sql in the tables file, or check the sink schema"
                    f" ({schema!r}: --sink-schema) and that the workers created its tables"
                )
                continue
            _record(tally, spec, names, rows)


def watch(
    conn: psycopg.Connection[Any],
    specs: Sequence[InvariantSpec],
    schema: str,
    seconds: float = 0.0,
    interval_ms: int = 200,
    stop: threading.Event | None = None,
    on_round: Callable[[InvariantReport], None] | None = None,
    baseline: InvariantReport | None = None,
) -> InvariantReport:
    """Rounds every ``interval_ms`` until ``seconds`` pass (0: one round) or ``stop`` is set.

    Keys ``baseline`` saw violating are not counted (each tally's ``ignored``)."""
    stop = stop or threading.Event()
    known = {t.name: frozenset(t.keys) for t in baseline.tallies} if baseline else {}
    report = InvariantReport(
        schema, [InvariantTally(s.name, ignored=known.get(s.name, frozenset())) for s in specs]
    )
    started = time.monotonic()
    deadline = started + seconds
    while True:
        check_round(conn, specs, schema, report)
        report.seconds = time.monotonic() - started
        if on_round is not None:
            on_round(report)
        left = deadline - time.monotonic()
        if left <= 0 or stop.is_set() or report.errors == report.tallies:
            break
        if stop.wait(min(left, interval_ms / 1000)):  # pacing between rounds, not synchronization
            break
    return report
