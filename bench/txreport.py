"""The results document's ``tx_modes`` (bench/txmodes.py) as Markdown and as goals."""

from __future__ import annotations

from typing import Any

MODES = ("per-change", "atomic")


def _get(doc: dict[str, Any], *path: str) -> Any:
    x: Any = doc
    for k in path:
        x = x.get(k) if isinstance(x, dict) else None
    return x


def _num(v: Any, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, int | float) else "–"


def _ratio(v: Any) -> str:
    return f"{v:.2f}×" if isinstance(v, int | float) else "–"


def violations(mode_doc: dict[str, Any]) -> tuple[int | None, int | None]:
    """(violating rounds, rounds) of the fixed-rate part's invariant checker."""
    inv = _get(mode_doc, "fixed_rate", "invariants") or {}
    return inv.get("violating_rounds"), inv.get("rounds")


# (label, path under a mode, number format, what the ratio is of)
ROWS: tuple[tuple[str, tuple[str, ...], str, str | None], ...] = (
    ("drain events/s", ("drain", "events_s"), ",.0f", "drain_events_s"),
    ("drain source tx/s", ("drain", "tx_s"), ",.0f", "drain_tx_s"),
    ("drain CPU s / 1k events (worker tree)", ("drain", "cpu_s_per_1k_ev"), ".3f", "drain_cpu_s_per_1k_ev"),
    ("drain peak RSS MB", ("drain", "peak_rss_mb"), ".0f", "drain_peak_rss_mb"),
    ("commit→sink p50 ms (fixed rate)", ("fixed_rate", "latency", "p50_ms"), ".0f", "p50_ms"),
    ("commit→sink p95 ms", ("fixed_rate", "latency", "p95_ms"), ".0f", "p95_ms"),
    ("commit→sink p99 ms", ("fixed_rate", "latency", "p99_ms"), ".0f", "p99_ms"),
    ("of which Debezium (commit→captured) p50 ms", ("fixed_rate", "latency", "capture_p50_ms"), ".0f", None),
    (
        "worker: captured→sink p50 ms",
        ("fixed_rate", "latency", "worker_p50_ms"),
        ".0f",
        "worker_p50_ms",
    ),
    ("worker: captured→sink p99 ms", ("fixed_rate", "latency", "worker_p99_ms"), ".0f", "worker_p99_ms"),
    ("peak RSS MB (fixed rate)", ("fixed_rate", "peak_rss_mb"), ".0f", "fixed_rate_peak_rss_mb"),
    ("CPU s / 1k events (fixed rate)", ("fixed_rate", "cpu_s_per_1k_ev"), ".3f", None),
)


def markdown(tx: dict[str, Any] | None) -> list[str]:
    if not tx:
        return []
    modes, rat, size = tx.get("modes") or {}, tx.get("ratios") or {}, tx.get("size") or {}
    load = _get(modes, "atomic", "fixed_rate", "load") or {}
    bl = tx.get("backlog") or {}
    out = [
        "",
        "## Transactions: atomic vs per-change (orders source: order + lines + outbox per transaction)",
        "",
        f"Fixed rate: {load.get('transactions', '?')} transactions at {load.get('achieved_tx_s', '?')} tx/s "
        f"(asked {size.get('rate', '?')}), both workers running; drain: {_num(bl.get('transactions'), ',')} "
        "transactions written with the workers stopped, then each worker alone (per-change first). "
        "Latency: the generator's in-transaction stamp → the audit trigger of the sink write "
        "(order_view rows).",
        "",
        "| | per-change | atomic | atomic / per-change |",
        "|---|---:|---:|---:|",
    ]
    for label, path, fmt, key in ROWS:
        cells = [_num(_get(modes, m, *path), fmt) for m in MODES]
        out.append(f"| {label} | {cells[0]} | {cells[1]} | {_ratio(rat.get(key)) if key else '–'} |")
    cells = []
    for m in MODES:
        bad, rounds = violations(modes.get(m) or {})
        cells.append(f"{bad} of {rounds} rounds" if rounds is not None else "–")
    out.append(f"| invariant-violating checker rounds | {cells[0]} | {cells[1]} | |")
    return out


def goals(tx: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Issue 16: 0 invariant violations in atomic mode (per-change's shown as the reason for it)."""
    if not tx:
        return []
    modes = tx.get("modes") or {}
    bad, rounds = violations(modes.get("atomic") or {})
    pbad, prounds = violations(modes.get("per-change") or {})
    return [
        {
            "goal": "atomic transactions: 0 invariant violations under the fixed-rate orders load",
            "value": f"atomic {bad} of {rounds} rounds (per-change {pbad} of {prounds})",
            "met": None if rounds is None else bad == 0,
        }
    ]
