"""One PNG: replay throughput per workload and peer, and live latency percentiles per workload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot(doc: dict[str, Any], out: Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    peers = ("changefeed", "jdbc-sink", "plain-loop")
    wls = list(doc["summary"]["peers"])
    width = 0.2
    for i, p in enumerate(peers):
        meds = [doc["summary"]["peers"][w].get(p, {}).get("events_s", {}).get("median", 0) for w in wls]
        lo = [m - doc["summary"]["peers"][w].get(p, {}).get("events_s", {}).get("min", m) for w, m in zip(wls, meds, strict=True)]
        hi = [doc["summary"]["peers"][w].get(p, {}).get("events_s", {}).get("max", m) - m for w, m in zip(wls, meds, strict=True)]
        ax1.bar([x + i * width for x in range(len(wls))], meds, width, yerr=[lo, hi], capsize=3, label=p)
    ceil = [doc["ratios"][w]["ceiling_ev_s"] for w in wls]
    ax1.scatter([x + width for x in range(len(wls))], ceil, marker="_", s=900, color="k", label="ceiling (slowest stage)")
    ax1.set_xticks([x + width for x in range(len(wls))], wls)
    ax1.set_ylabel("events/s (replay, median, min–max)")
    ax1.set_title("Throughput per workload")
    ax1.legend()
    live = doc["live"]
    for i, q in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        ax2.bar([x + i * width for x in range(len(live))], [lv["latency"].get(q, 0) for lv in live], width, label=q)
    ax2.axhline(1000, color="r", linestyle="--", label="goal p99 ≤ 1 s")
    ax2.set_xticks([x + width for x in range(len(live))], [f"{lv['workload']}\n@{lv['latency_rate_tx_s']:.0f} tx/s" for lv in live])
    ax2.set_ylabel("commit → applied latency, ms")
    ax2.set_title("Latency at 50% of max sustained load")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
