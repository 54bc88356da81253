"""Medians, spreads, ratios against peers and ceilings, goals met/missed, and the Markdown table."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

GOALS = {
    "jdbc_insert": 1.0,
    "jdbc_update": 1.5,
    "plain": 0.8,
    "ceiling": 0.7,
    "p99_ms": 1000.0,
    "worker_rss_mb": 250.0,
    "stack_gib": 4.0,
}


def med(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(runs: list[dict[str, Any]], limits: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        by[(r["workload"], r["peer"])].append(r)
    peers: dict[str, dict[str, Any]] = defaultdict(dict)
    for (wl, peer), rs in by.items():
        peers[wl][peer] = {
            "events_s": med([r["events_s"] for r in rs]),
            "row_writes": med([float(r["row_writes"]) for r in rs]),
            "cpu_s_per_1k": med([r["cpu_s_per_1k"] for r in rs]),
            "peak_rss_mb": med([r["peak_rss_mb"] for r in rs]),
            "events": rs[0]["events"],
        }
    lim: dict[str, dict[str, Any]] = defaultdict(dict)
    lby: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in limits:
        lby[entry["workload"]].append(entry)
    for wl, es in lby.items():
        for k in ("kafka_consume_ev_s", "consume_decode_ev_s", "pg_upsert_ev_s"):
            lim[wl][k] = med([e[k] for e in es])
    return {"peers": dict(peers), "limits": dict(lim)}


def _r(a: float, b: float) -> float:
    return a / b if b else float("nan")


def ratios(summary: dict[str, Any], capture_ev_s: float) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for wl, peers in summary["peers"].items():
        cf = peers.get("changefeed", {}).get("events_s", {}).get("median", 0.0)
        lim = summary["limits"].get(wl, {})
        stages = {k: v["median"] for k, v in lim.items()}
        if capture_ev_s:
            stages["debezium_capture_ev_s"] = capture_ev_s
        ceiling_name = min(stages, key=lambda k: stages[k]) if stages else ""
        out[wl] = {
            "changefeed_ev_s": cf,
            "vs_jdbc": _r(cf, peers.get("jdbc-sink", {}).get("events_s", {}).get("median", 0.0)),
            "vs_plain": _r(cf, peers.get("plain-loop", {}).get("events_s", {}).get("median", 0.0)),
            "ceiling_ev_s": stages.get(ceiling_name, 0.0),
            "vs_ceiling": _r(cf, stages.get(ceiling_name, 0.0)),
        }
        out[wl]["ceiling_stage"] = ceiling_name  # type: ignore[assignment]
    return out


def _fmt(stat: dict[str, float]) -> str:
    return f"{stat['median']:,.0f} ({stat['min']:,.0f}–{stat['max']:,.0f})"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def markdown(doc: dict[str, Any]) -> str:  # one table builder, read top to bottom
    s, rat, live, meta = doc["summary"], doc["ratios"], doc["live"], doc["meta"]
    lines = [
        f"# changefeed benchmark — {meta['date']} ({'quick' if meta['quick'] else 'full'} mode)",
        "",
        f"Box: {meta['cpus']} cores shared with other engineers' fault tests (load avg at start "
        f"{meta['loadavg_start']}, end {meta['loadavg_end']}); all numbers are from one run, peers "
        f"alternating on identical replayed topics, {meta['reps']} repetition(s): median (min–max).",
        "",
        "## Replay throughput (events/s, first→last sink write) and ratios",
        "",
        "| workload | events | changefeed | JDBC sink | plain loop | cf/JDBC | cf/plain | ceiling (stage) | cf/ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for wl, peers in s["peers"].items():
        r = rat[wl]
        cells = [_fmt(peers[p]["events_s"]) if p in peers else "–" for p in ("changefeed", "jdbc-sink", "plain-loop")]
        lines.append(
            f"| {wl} | {peers.get('changefeed', {}).get('events', 0):,} | {' | '.join(cells)} | "
            f"{r['vs_jdbc']:.2f}× | {r['vs_plain']:.2f}× | {r['ceiling_ev_s']:,.0f} ({r['ceiling_stage']}) | "
            f"{r['vs_ceiling']:.2f}× |"
        )
    lines += ["", "## Sink row writes issued and CPU (replay, medians)", "",
              "| workload | peer | row writes | CPU s / 1k events | peak RSS MB |", "|---|---|---:|---:|---:|"]  # fmt: skip
    for wl, peers in s["peers"].items():
        for p, v in peers.items():
            lines.append(
                f"| {wl} | {p} | {v['row_writes']['median']:,.0f} | {v['cpu_s_per_1k']['median']:.3f} | "
                f"{v['peak_rss_mb']['median']:.0f} |"
            )
    lines += ["", "## Stage limits (events/s, medians)", "",
              "| workload | Kafka consume | consume+decode | PG upsert (pre-decoded) |", "|---|---:|---:|---:|"]  # fmt: skip
    for wl, lim in s["limits"].items():
        lines.append(
            f"| {wl} | {lim['kafka_consume_ev_s']['median']:,.0f} | {lim['consume_decode_ev_s']['median']:,.0f} |"
            f" {lim['pg_upsert_ev_s']['median']:,.0f} |"
        )
    bl = doc.get("backlog") or {}
    if bl:
        lines.append(
            f"\nDebezium capture alone (PostgreSQL, {bl['events']:,} bulk-inserted rows, workers stopped): "
            f"**{bl['capture_ev_s']:,.0f} ev/s**. Catch-up drain by one worker: **{bl['drain_ev_s']:,.0f} ev/s** "
            f"({bl['drain_s']:.0f} s), worker peak RSS {bl['worker_peak_rss_mb']:.0f} MB."
        )
    lines += ["", "## Live end to end (load generator → sources → Debezium → Kafka → worker → sink)", "",
              "| workload | max sustained tx/s | ev/s | sink row writes / events | p50 ms | p95 ms | p99 ms "
              "| at tx/s | limited by |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for lv in live:
        lat = lv["latency"]
        lines.append(
            f"| {lv['workload']} | {lv['max_tx_s']:.0f} | {lv['max_events_s']:,.0f} | "
            f"{lv['sink_row_writes']:,} / {lv['events']:,} | {lat.get('p50_ms', float('nan')):.0f} | "
            f"{lat.get('p95_ms', float('nan')):.0f} | {lat.get('p99_ms', float('nan')):.0f} | "
            f"{lv['latency_rate_tx_s']:.0f} | {'load generator' if lv['generator_bound'] else 'pipeline lag'} |"
        )
    res = doc["resources"]
    lines += ["", "## Memory (peak over the run) and CPU per 1,000 events (live phase)", "",
              "| component | peak RSS MB | peak PSS MB | CPU s / 1k events (live, median over workloads) |",
              "|---|---:|---:|---:|"]  # fmt: skip
    for name in sorted(res["peak_rss_mb"]):
        cpus = [lv["cpu_s_per_1k"][name] for lv in live if name in lv["cpu_s_per_1k"]]
        cpu = f"{statistics.median(cpus):.3f}" if cpus else "–"
        lines.append(f"| {name} | {res['peak_rss_mb'][name]:.0f} | {res['peak_pss_mb'][name]:.0f} | {cpu} |")
    lines.append(f"| **stack total (PSS)** | | {res['peak_total_pss_mb']:.0f} | |")
    lines += ["", "## Goals", "", "| goal | value | status |", "|---|---:|---|"]
    for g in doc["goals"]:
        lines.append(f"| {g['goal']} | {g['value']} | {_met(g['met'])} |")
    lines += ["", "## Notes", ""] + [f"- {n}" for n in doc["notes"]]
    return "\n".join(lines) + "\n"


def goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rat, live, res = doc["ratios"], doc["live"], doc["resources"]
    out = []
    names = {"insert-heavy": ("jdbc_insert", "≥ 1.0× JDBC sink, insert-heavy"),
             "update-heavy-hot": ("jdbc_update", "≥ 1.5× JDBC sink, update-heavy (hot keys)")}  # fmt: skip
    for wl, (key, label) in names.items():
        if wl in rat:
            v = rat[wl]["vs_jdbc"]
            out.append({"goal": label, "value": f"{v:.2f}×", "met": v >= GOALS[key]})
    for wl, r in rat.items():
        out.append({"goal": f"≥ 80% of plain loop, {wl}", "value": f"{r['vs_plain']:.0%}", "met": r["vs_plain"] >= 0.8})
        out.append({"goal": f"≥ 70% of ceiling, {wl}", "value": f"{r['vs_ceiling']:.0%}", "met": r["vs_ceiling"] >= 0.7})
    for lv in live:
        p99 = lv["latency"].get("p99_ms", float("nan"))
        out.append({"goal": f"p99 ≤ 1 s at 50% load, {lv['workload']}", "value": f"{p99:.0f} ms", "met": p99 <= 1000})
    worker = max([v for k, v in res["peak_rss_mb"].items() if k.startswith("worker")] or [0.0])
    out.append({"goal": "worker RSS < 250 MB at max load", "value": f"{worker:.0f} MB", "met": worker < 250})
    growth = res.get("worker_rss_growth_mb")
    if growth is not None:
        out.append({"goal": "worker RSS does not grow (live worker, first vs last minute)",
                    "value": f"{growth:+.0f} MB over {res['worker_rss_span_s']:.0f} s", "met": growth < 20})  # fmt: skip
    total = res["peak_total_pss_mb"] / 1024
    out.append({"goal": "whole stack < 4 GiB (peak PSS sum)", "value": f"{total:.2f} GiB", "met": total < 4})
    return out
