"""The project's declared invariants, checked on the sink beside the demo's load.

A thread runs ``changefeed verify invariants``'s rounds (streams.verify.invariants) on its own
connection from just before the load until the oracle has passed; the summary shows how many
rounds saw a violation. In the per-change mode an order and its lines are applied in separate
sink transactions, so readers see some half-applied orders for a moment; a source applied in
whole transactions shows none. After verify, one more round must find nothing at all.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from streams.project.invariants import InvariantSpec
from streams.project.tables import load_tables
from streams.settings import Settings
from streams.verify import connections
from streams.verify.invariants import InvariantReport, watch

INTERVAL_MS = 200  # a round every 200 ms: light next to the load on a 2-core box
MAX_SECONDS = 24 * 3600.0  # the thread stops when told; this only bounds a forgotten one


def transaction_modes(file: object) -> str:
    """How the project's sources apply transactions, e.g. ``orders: atomic`` (default: per-change).

    Read by attribute from the tables file's ``[[sources]]``: the demo stays indifferent to which
    engine version declares them."""
    sources = getattr(file, "sources", ())
    declared = [f"{s.connector}: {getattr(s.transactions, 'value', s.transactions)}" for s in sources]
    return ", ".join(declared) or "per-change"


class DemoInvariants:
    def __init__(self, settings: Settings, schema: str) -> None:
        file = load_tables(settings.project.tables)
        self.specs: tuple[InvariantSpec, ...] = file.invariants
        self.mode = transaction_modes(file)  # what the rounds measure, said in the summary
        self.settings, self.schema = settings, schema
        self._stop = threading.Event()
        self._report: InvariantReport | None = None
        self.baseline: InvariantReport | None = None
        self._error: str = ""
        self.rounds = 0  # rounds done so far (the report is whole only after stop)
        self._thread = threading.Thread(target=self._run, name="demo-invariants", daemon=True)

    def _connect(self) -> psycopg.Connection[Any]:
        return connections.postgres(self.settings.sink_postgres, "changefeed-demo-invariants")

    def _run(self) -> None:
        try:
            with self._connect() as conn:
                self._report = watch(
                    conn, self.specs, self.schema, MAX_SECONDS, INTERVAL_MS, self._stop, self._progress,
                    baseline=self.baseline,
                )  # fmt: skip
        except psycopg.Error as exc:  # the demo goes on; the summary says why the count is missing
            self._error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    def _progress(self, report: InvariantReport) -> None:
        self.rounds = report.rounds

    def start(self) -> None:
        """A baseline round first: keys already violating before the load (rows a test or the
        source itself wrote that break the rule) are not this run's finding and are not counted."""
        if not self.specs:
            return
        try:
            with self._connect() as conn:
                self.baseline = watch(conn, self.specs, self.schema)
        except psycopg.Error:
            self.baseline = None  # the thread's own connection will say why, if it fails too
        self._thread.start()

    @property
    def ignored(self) -> int:
        """How many keys the baseline round found violating (excluded from every count)."""
        return sum(len(t.keys) for t in self.baseline.tallies) if self.baseline else 0

    def stop(self) -> tuple[InvariantReport | None, str]:
        """The rounds during the run (None: no invariants, or the checker failed; then why)."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        return self._report, self._error

    def final(self) -> InvariantReport | None:
        """One round on the converged sink."""
        if not self.specs:
            return None
        try:
            with self._connect() as conn:
                return watch(conn, self.specs, self.schema, baseline=self.baseline)
        except psycopg.Error:  # the summary shows no final round; verify's verdict stands
            return None
