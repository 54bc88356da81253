"""One PNG: replay throughput per workload and peer (with the sink ceiling), and latency percentiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

PEERS = ("changefeed", "changefeed-nopub", "jdbc-sink", "plain-loop")
WIDTH = 0.2


def _throughput(ax: Any, doc: dict[str, Any]) -> None:
    summary = doc["summary"]["peers"]
    wls = list(summary)
    for i, p in enumerate(PEERS):
        stats = [summary[w].get(p, {}).get("events_s", {}) for w in wls]
        meds = [s.get("median", 0.0) for s in stats]
        lo = [m - s.get("min", m) for m, s in zip(meds, stats, strict=True)]
        hi = [s.get("max", m) - m for m, s in zip(meds, stats, strict=True)]
        xs = [x + i * WIDTH for x in range(len(wls))]
        bars = ax.bar(xs, meds, WIDTH, yerr=[lo, hi], capsize=3, label=p)
        ax.bar_label(bars, labels=[f"{m:,.0f}" for m in meds], fontsize=7, padding=2)
    mid = WIDTH * (len(PEERS) - 1) / 2
    for x, w in enumerate(wls):
        ceiling = doc["ratios"][w]["ceiling_ev_s"]
        ax.hlines(ceiling, x - WIDTH / 2, x + mid * 2 + WIDTH / 2, colors="k", linestyles="--")
    ax.plot([], [], "k--", label="sink ceiling (slowest stage)")
    ax.set_xticks([x + mid for x in range(len(wls))], wls)
    ax.set_ylabel("events/s (replay, median; bars: min–max)")
    ax.set_title("Replay throughput per workload")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.3)  # headroom for the legend
    ax.legend(fontsize=8, loc="upper left", ncol=3)


def _latency(ax: Any, doc: dict[str, Any]) -> None:
    """Latency at half of the stepped maximum when measured (older runs: the fixed low-rate live phase)."""
    steps = [st for st in doc.get("stepped") or [] if st.get("latency")]
    if steps:
        runs = [
            (st["latency"], f"{st['workload']}\n{st['half_load_ev_s']:,.0f} ev/s (50% of max)")
            for st in steps
        ]
        title = "Latency at half of the maximum sustained rate"
    else:
        live = doc["live"]
        runs = [(lv["latency"], f"{lv['workload']}\n{lv['events_s']:.0f} ev/s") for lv in live]
        title = "Live latency at a fixed moderate rate"
    for i, q in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        xs = [x + i * WIDTH for x in range(len(runs))]
        bars = ax.bar(xs, [lat.get(q, 0) for lat, _ in runs], WIDTH, label=q.removesuffix("_ms"))
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
    ax.axhline(1000, color="r", linestyle="--", label="goal: p99 ≤ 1 s")
    ax.set_xticks([x + WIDTH for x in range(len(runs))], [label for _, label in runs])
    ax.set_ylabel("source commit → sink commit, ms")
    ax.set_title(title)
    ax.legend(fontsize=8)


def plot(doc: dict[str, Any], out: Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 5.5))
    _throughput(ax1, doc)
    _latency(ax2, doc)
    fig.suptitle(
        f"changefeed benchmark {doc['meta']['date']} ({'quick' if doc['meta']['quick'] else 'full'})"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
