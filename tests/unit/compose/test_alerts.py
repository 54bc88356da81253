"""compose/prometheus and compose/grafana: valid for Prometheus, and naming only metrics that exist.

``promtool`` (Debian's ``prometheus`` package) checks the scrape config and the rules and runs
the rules' own unit tests (``alerts.test.yml``: each alert fires on trouble, only after its
``for``, and not on healthy series). Skipped, with the reason, where promtool is missing. The
metric names are checked here without it: a renamed metric must not leave an alert that can
never fire.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from streams.connect.health import SlotHealth
from streams.dashboard.collect import Connector, Snapshot, Source, TableRow
from streams.dashboard.exporter import SnapshotCollector
from streams.pipeline.atomic import TransactionMetrics
from streams.pipeline.metrics import PipelineMetrics
from streams.stack.paths import repo_root

PROM = repo_root() / "compose" / "prometheus"
GRAFANA = repo_root() / "compose" / "grafana" / "changefeed.json"
NAME = re.compile(r"\bchangefeed_[a-z_]+")


def _promtool(*args: str) -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    done = subprocess.run([tool, *args], cwd=PROM, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_scrape_config_is_valid() -> None:
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")


def test_alert_rules_are_valid() -> None:
    assert "SUCCESS: 8 rules found" in _promtool("check", "rules", "alerts.yml")


def test_alert_rules_fire_when_they_should() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts.test.yml")


def exported_names() -> set[str]:
    """Every series name a worker and the dashboard export (counters with their ``_total``)."""
    m = PipelineMetrics()
    m.watch_slots(lambda: [SlotHealth("s", True, "reserved", 1, 1)])
    snap = Snapshot(0.0, "g", connectors=[Connector("c", "RUNNING", [(0, "RUNNING")])])
    snap.tables = [TableRow("s.t", ["p.s.t"], 1, 1, 1.0, 0, 0, "-")]
    snap.sources = [Source("slot s", "slot", 1, "")]
    m.registry.register(SnapshotCollector(lambda: snap))
    # Touch each labelled child so it appears in the exposition.
    m.dead_letters_by_table.labels(source_table="s.t").inc()
    m.end_to_end.labels(table="s.t").observe(0.1)
    m.lag_events.labels(topic="p", partition="0").set(0)
    m.lag_seconds.labels(topic="p", partition="0").set(0)
    m.conflicts.labels(table="s.t", reason="stale").inc()
    m.applied.labels(table="s.t").inc()
    m.flush_seconds.observe(0.1)
    m.batch_records.observe(1)
    m.rebalances.inc()
    tx = TransactionMetrics(m.registry)
    tx.owner.labels(source="s").set(1)
    tx.buffered.labels(source="s").set(0)
    tx.buffered_rows.labels(source="s").set(0)
    tx.released.labels(source="s").inc()
    tx.split.labels(source="s", reason="wait").inc()
    text = generate_latest(m.registry).decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def _expressions() -> list[str]:
    rules = (PROM / "alerts.yml").read_text()
    exprs = [line.split("expr:", 1)[1] for line in rules.splitlines() if "expr:" in line]
    board = json.loads(GRAFANA.read_text())
    exprs += [t["expr"] for p in board["panels"] for t in p["targets"]]
    return exprs


def test_rules_and_dashboard_name_only_exported_metrics() -> None:
    names = exported_names()
    used = {n for e in _expressions() for n in NAME.findall(e)}
    assert used, "no expressions found"
    assert used <= names, sorted(used - names)


def test_alert_rules_cover_the_issue(tmp_path: Path) -> None:
    rules = (PROM / "alerts.yml").read_text()
    for alert in (
        "ChangefeedConnectorTaskFailed",
        "ChangefeedLagHigh",
        "ChangefeedDeadLettersGrowing",
        "ChangefeedSlotRetainingWal",
        "ChangefeedWorkerGroupEmpty",
        "AtomicSourceUnowned",
        "AtomicTransactionsStuck",
        "AtomicTransactionsSplit",
    ):
        assert f"alert: {alert}" in rules
