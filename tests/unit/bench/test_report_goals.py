"""The benchmark's verdicts: goals of issue 13 met/missed from a results document, and its tables."""

from __future__ import annotations

from typing import Any

from bench import report

WORKLOADS = ("insert-heavy", "update-heavy-hot", "mixed-deletes-large")


def run(
    peer: str, wl: str, rate: float, cpu: float = 0.05, rep: int = 1, idle: float | None = None
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "peer": peer,
        "workload": wl,
        "rep": rep,
        "events": 400_000,
        "seconds": 400_000 / rate,
        "events_s": rate,
        "row_writes": 1000,
        "cpu_s_per_1k": cpu,
        "peak_rss_mb": 120.0,
        "first_batch_events": 0,
        "wall_s": 30.0,
        "wall_events_s": rate * 0.9,
    }
    if idle is not None:
        r["box_idle_share"] = idle
    return r


def document(
    cf: float = 10_000,
    nopub: float = 12_000,
    jdbc: float = 20_000,
    plain: float = 14_000,
    cf_cpu: float = 0.08,
    jdbc_cpu: float = 0.05,
    part: list[dict[str, Any]] | None = None,
    drain: float = 8_000,
) -> dict[str, Any]:
    runs = []
    for wl in WORKLOADS:
        runs += [
            run("changefeed", wl, cf, cf_cpu),
            run("changefeed", wl, cf * 0.9, cf_cpu, rep=2),
            run("changefeed-nopub", wl, nopub),
            run("jdbc-sink", wl, jdbc, jdbc_cpu),
            run("plain-loop", wl, plain),
        ]
    lims = [
        {"workload": wl, "kafka_consume_ev_s": 1e5, "consume_decode_ev_s": 3e4, "pg_upsert_ev_s": 5e4}
        for wl in WORKLOADS
    ]
    summary = report.summarize(runs, lims)
    part = part or []
    return {
        "meta": {"date": "d", "quick": True, "reps": 2, "cpus": 2, "loadavg_start": "1", "loadavg_end": "2"},
        "live": [],
        "stepped": [],
        "soak": {},
        "runs": runs,
        "partitioned": part,
        "partitioned_summary": report.summarize(part, [])["peers"],
        "limits": lims,
        "backlog": {
            "events": 50_000,
            "source_insert_s": 2.0,
            "capture_ev_s": 20_000.0,
            "drain_ev_s": drain,
            "drain_s": 6.0,
            "worker_peak_rss_mb": 130.0,
        },
        "summary": summary,
        "ratios": report.ratios(summary, 20_000.0),
        "partitioned_ratios": report.partitioned(part),
        "resources": {
            "peak_rss_mb": {"connect": 700.0},
            "peak_pss_mb": {"connect": 650.0},
            "peak_total_pss_mb": 2000.0,
        },
        "profiles": {},
        "notes": ["a note"],
    }


def verdict(doc: dict[str, Any], starts: str) -> dict[str, Any]:
    found = [g for g in report.goals(doc) if g["goal"].startswith(starts)]
    assert len(found) >= 1, [g["goal"] for g in report.goals(doc)]
    return found[0]


def partitioned(cf1: float, cf2: float, idle2: float) -> list[dict[str, Any]]:
    wl = "insert-heavy, 4 partitions"
    return [
        run("changefeed-p4x1", wl, cf1, idle=0.4),
        run("changefeed-p4x2", wl, cf2, idle=idle2),
        run("jdbc-sink-p4t1", wl, 20_000, idle=0.5),
        run("jdbc-sink-p4t2", wl, 26_000, idle=0.3),
    ]


def test_the_jdbc_ratio_goals_use_the_median_of_the_reps() -> None:
    doc = document(cf=20_000, jdbc=20_000)  # reps 20,000 and 18,000: median 19,000
    g = verdict(doc, "≥ 1.0× JDBC sink, insert-heavy")
    assert (g["value"], g["met"]) == ("0.95×", False)
    assert verdict(document(cf=40_000, jdbc=20_000), "≥ 1.5× JDBC")["met"] is True


def test_cpu_per_1000_events_is_judged_against_the_jdbc_sink_on_every_workload() -> None:
    cpu = [g for g in report.goals(document(cf_cpu=0.08, jdbc_cpu=0.05)) if g["goal"].startswith("CPU per")]
    assert len(cpu) == len(WORKLOADS)
    assert all(g["met"] is False for g in cpu)
    cheap = [g for g in report.goals(document(cf_cpu=0.04, jdbc_cpu=0.05)) if g["goal"].startswith("CPU per")]
    assert all(g["met"] is True for g in cheap)


def test_the_plain_loop_goal_compares_the_worker_without_publishing() -> None:
    g = verdict(document(cf=1_000, nopub=11_200, plain=14_000), "≥ 80% of the plain loop")
    assert (g["value"], g["met"]) == ("80%", True)  # changefeed with publishing (1,000) does not count
    assert verdict(document(nopub=11_000, plain=14_000), "≥ 80% of the plain loop")["met"] is False


def test_backlog_drain_is_judged_against_debezium_capture() -> None:
    assert verdict(document(drain=8_000), "backlog drain")["met"] is False
    assert verdict(document(drain=21_000), "backlog drain")["met"] is True
    skipped = document()
    skipped["backlog"].update(capture_ev_s=0.0, drain_ev_s=0.0)  # left out by the time budget
    assert verdict(skipped, "backlog drain")["met"] is None
    assert "## Catch-up" not in report.markdown({**skipped, "goals": report.goals(skipped)})


def test_two_workers_meet_the_goal_by_scaling_or_by_a_saturated_box() -> None:
    scaled = verdict(document(part=partitioned(10_000, 15_500, idle2=0.4)), "partitioned")
    assert scaled["met"] is True
    saturated = verdict(document(part=partitioned(10_000, 12_000, idle2=0.04)), "partitioned")
    assert saturated["met"] is True
    assert "saturated" in saturated["value"]
    idle = verdict(document(part=partitioned(10_000, 12_000, idle2=0.35)), "partitioned")
    assert idle["met"] is False
    assert "1.20×, box idle 35%" in idle["value"]


def test_no_partitioned_runs_no_partitioned_goal() -> None:
    assert not [g for g in report.goals(document()) if g["goal"].startswith("partitioned")]


def test_the_markdown_has_every_peer_with_spread_cpu_rss_and_the_partitioned_idle_share() -> None:
    doc = document(part=partitioned(10_000, 12_000, idle2=0.04))
    doc["goals"] = report.goals(doc)
    md = report.markdown(doc)
    assert "| insert-heavy | changefeed | 2 | 400,000 | 9,500 (9,000–10,000) | 0.080 | 120 |" in md
    assert "| insert-heavy, 4 partitions | changefeed-p4x2 | 1 | 400,000 | 12,000 (12,000–12,000) |" in md
    assert md.count("| 4% |") == 1  # the 2-worker run's idle share
    assert "2 workers / 1 worker: **1.20×**" in md
    assert "| partitioned: 2 workers on 4 partitions" in md
