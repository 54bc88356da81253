"""The dashboard's HTML, rendered on the server (one render path: the first page and every
update of the live feed are the same function's output; the script only swaps it in).

Every value goes through ``html.escape``. Elements carry ``data-*`` names (connector, table,
field) so a test, or an operator's own scraper, can find a number without parsing layout.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from html import escape

from streams.connect.health import human_bytes
from streams.dashboard.collect import Snapshot
from streams.dashboard.history import History
from streams.pipeline.metrics import LATENCY_BUCKETS

CHART_W, CHART_H = 720, 160


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= LATENCY_BUCKETS[-1]:  # in the overflow bucket: only its lower bound is known
        return f"> {LATENCY_BUCKETS[-1]:.0f} s"
    return f"{seconds * 1000:.0f} ms"


def _cell(field: str, text: str, cls: str = "") -> str:
    klass = f' class="{escape(cls)}"' if cls else ""
    return f'<td data-field="{escape(field)}"{klass}>{escape(text)}</td>'


def _table(caption: str, head: Sequence[str], rows: Iterable[str], empty: str, key: str) -> str:
    body = "".join(rows) or f'<tr><td colspan="{len(head)}" class="empty">{escape(empty)}</td></tr>'
    heads = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (
        f'<section data-section="{escape(key)}"><h2>{escape(caption)}</h2>'
        f"<table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table></section>"
    )


def connectors(snap: Snapshot) -> str:
    rows = []
    for c in snap.connectors:
        tasks = ", ".join(f"{i}: {s}" for i, s in c.tasks) or "no tasks"
        rows.append(
            f'<tr data-connector="{escape(c.name)}"><th>{escape(c.name)}</th>'
            + _cell("state", c.state, f"state {c.state.lower()}")
            + _cell("tasks", tasks)
            + _cell("failure", c.failure)
            + "</tr>"
        )
    return _table("Connectors", ["connector", "state", "tasks", "failure (first trace line)"], rows,
                  "no connectors on the Connect cluster", "connectors")  # fmt: skip


def tables(snap: Snapshot, history: History) -> str:
    rows = []
    for t in snap.tables:
        p50, p99 = history.latency(t.table)
        lagging = "warn" if t.lag_events else ""
        rows.append(
            f'<tr data-table="{escape(t.table)}">'
            f'<th title="{escape(", ".join(t.topics))}">{escape(t.table)}</th>'
            + _cell("events_per_s", _num(history.rate(t.table)))
            + _cell("latency_p50", _ms(p50))
            + _cell("latency_p99", _ms(p99))
            + _cell("lag_events", str(t.lag_events), lagging)
            + _cell("lag_seconds", f"{t.lag_seconds:.1f} s", lagging)
            + _cell("conflicts", str(t.conflicts), "warn" if t.conflicts else "")
            + _cell("dead_letters", str(t.dead_letters), "bad" if t.dead_letters else "")
            + _cell("position", t.position)
            + "</tr>"
        )
    head = ["sink table", "events/s", "latency p50", "latency p99", "lag (events)", "lag (age)",
            "conflicts", "dead letters", "last source position"]  # fmt: skip
    return _table("Tables", head, rows, "no declared tables", "tables")


def atomic(snap: Snapshot) -> str:
    """Atomic sources: owned by exactly one worker, releasing transactions, split or not."""
    if not snap.atomic:
        return ""  # no [[sources]] marked atomic: nothing to show
    rows = []
    for a in snap.atomic:
        owner = {0: "no", 1: "yes"}.get(a.owners, f"{a.owners} workers")
        state = {"OK": "", "WARN": "warn"}.get(a.state, "bad")
        rows.append(
            f'<tr data-atomic="{escape(a.source)}"><th>{escape(a.source)}</th>'
            + _cell("state", a.state, state)
            + _cell("owned", owner, "" if a.owners == 1 else "bad")
            + _cell("buffered", str(a.buffered))
            + _cell("buffered_rows", str(a.buffered_rows))
            + _cell("released", f"{a.released:.0f}")
            + _cell("splits", str(a.splits), "warn" if a.splits else "")
            + _cell("reason", a.reason, state)
            + "</tr>"
        )
    head = ["atomic source", "state", "owned", "buffered tx", "buffered rows", "released", "splits",
            "what to do"]  # fmt: skip
    return _table("Atomic sources (whole transactions)", head, rows, "", "atomic")


def sources(snap: Snapshot) -> str:
    rows = []
    for s in snap.sources:
        held = "purged" if s.retained_bytes is None else human_bytes(s.retained_bytes)
        rows.append(
            f'<tr data-source="{escape(s.name)}"><th>{escape(s.name)}</th>'
            + _cell("retained", held, "bad" if s.problem else "")
            + _cell("detail", s.detail)
            + _cell("problem", s.problem, "bad" if s.problem else "")
            + "</tr>"
        )
    head = ["source", "WAL / binlog held", "detail", "problem"]
    return _table("Sources: retention pressure", head, rows, "no slots or binlog connectors", "sources")


def workers(snap: Snapshot) -> str:
    rows = [
        f'<tr data-worker="{escape(w.client_id)}"><th>{escape(w.client_id)}</th>'
        + _cell("host", w.host)
        + _cell("partitions", ", ".join(w.partitions) or "none")
        + "</tr>"
        for w in snap.workers
    ]
    caption = f"Workers: group {snap.group} ({snap.group_state or 'unknown'})"
    return _table(caption, ["member", "host", "partitions"], rows, "no worker in the group", "workers")


def subjects(snap: Snapshot) -> str:
    rows = [
        f'<tr data-subject="{escape(s.subject)}"><th>{escape(s.subject)}</th>'
        + _cell("version", str(s.version))
        + _cell("schema_id", str(s.schema_id))
        + "</tr>"
        for s in snap.subjects
    ]
    caption = "Schema registry" + (
        f" (+{snap.other_subjects} subjects of other topics)" if snap.other_subjects else ""
    )
    return _table(
        caption, ["subject", "latest version", "schema id"], rows, "no subjects read yet", "subjects"
    )


def _polyline(points: Sequence[tuple[float, float]], t0: float, top: float, cls: str) -> str:
    if not points:
        return ""
    span = 15 * 60.0
    coords = " ".join(
        f"{(t - t0) / span * CHART_W:.1f},{CHART_H - (v / top * (CHART_H - 10) if top else 0):.1f}"
        for t, v in points
    )
    return f'<polyline class="{cls}" points="{coords}"/>'


def chart(history: History, now: float) -> str:
    """Throughput (events/s) and lag (events) over the last 15 minutes, each on its own scale."""
    series = history.series()
    t0 = now - 15 * 60.0
    rate = [(t, r) for t, r, _ in series]
    lag = [(t, float(n)) for t, _, n in series]
    top_rate = max((r for _, r in rate), default=0.0)
    top_lag = max((n for _, n in lag), default=0.0)
    return (
        '<section data-section="chart"><h2>Last 15 minutes</h2>'
        f'<svg viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" height="{CHART_H}" role="img"'
        ' aria-label="throughput and lag over the last 15 minutes">'
        f'<rect width="{CHART_W}" height="{CHART_H}" class="bg"/>'
        + _polyline(rate, t0, top_rate, "rate")
        + _polyline(lag, t0, top_lag, "lag")
        + "</svg>"
        f'<p class="legend"><span class="rate">━ events/s (max {top_rate:.1f})</span>'
        f' <span class="lag">━ lag in events (max {top_lag:.0f})</span> · 15 min ago → now</p></section>'
    )


def live(snap: Snapshot, history: History) -> str:
    """Everything that changes: swapped in by the script on every update."""
    when = time.strftime("%H:%M:%S", time.localtime(snap.at))
    problems = "".join(f'<li class="bad">{escape(p)}</li>' for p in snap.problems)
    errors = "".join(f'<li class="warn">{escape(e)} (not read)</li>' for e in snap.errors)
    banner = (
        f'<ul class="problems" data-section="problems">{problems}{errors}</ul>' if problems or errors else ""
    )
    return (
        f'<p class="meta" data-field="updated">updated {escape(when)} · read in {snap.took_s:.2f} s</p>'
        + banner
        + connectors(snap)
        + tables(snap, history)
        + atomic(snap)
        + chart(history, snap.at)
        + sources(snap)
        + workers(snap)
        + subjects(snap)
    )


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2329;background:#f7f8fa}
h1{font-size:20px;margin:0 0 .2em}h2{font-size:15px;margin:1.2em 0 .4em}
table{border-collapse:collapse;background:#fff;min-width:40%}
th,td{border:1px solid #d9dde3;padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:#eef1f5;font-weight:600}td{font-variant-numeric:tabular-nums}
.state.running{color:#17803d;font-weight:600}.state.failed{color:#c62828;font-weight:700}
.state.paused,.state.stopped,.state.unassigned,.state.restarting{color:#b26a00;font-weight:700}
.warn{color:#b26a00}.bad{color:#c62828;font-weight:600}.empty{color:#777}
.meta,.legend{color:#555;margin:.2em 0}#feed{font-weight:600}
svg .bg{fill:#fff;stroke:#d9dde3}polyline{fill:none;stroke-width:2}
polyline.rate,.legend .rate{stroke:#1565c0;color:#1565c0}
polyline.lag,.legend .lag{stroke:#c62828;color:#c62828}
"""


def page(snap: Snapshot, history: History) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>changefeed dashboard</title>"
        f"<style>{STYLE}</style></head><body>"
        '<h1>changefeed</h1><p class="meta">feed: <span id="feed">connecting…</span></p>'
        f'<main id="live">{live(snap, history)}</main>'
        '<script src="static/dashboard.js"></script></body></html>'
    )
