"""The order of snapshot and streamed records, on payloads captured from Debezium (fixtures/).

Each capture: an initial snapshot, a streamed change, an offset reset while a transaction was
open (it commits after the re-snapshot's point), the re-snapshot, later transactions and an
incremental snapshot. A sink applies a record when its position is above the stored one; played in
Kafka order, the sink must end equal to the source and never refuse a record that is newer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.cdc import ChangeEvent, SourcePosition, parse_change_event
from streams.cdc.position import first_after_snapshot, is_snapshot, snapshot_floor
from streams.sinks.snapshot_points import SnapshotTracker

FIXTURES = Path(__file__).parent / "fixtures"
PHASES = ("snapshot", "streamed_before_reset", "resnapshot", "streamed_after_resnapshot", "incremental")
# The source's rows after the capture's last transaction.
FINAL = {1: ("silver", 1), 2: ("gold", 4), 3: ("gold", 3)}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def events(source: str) -> list[tuple[str, ChangeEvent]]:
    data, out = load(f"{source}_resnapshot.json"), []
    for phase in PHASES:
        for v in data[phase]:
            out.append((phase, parse_change_event(v, offset=v["kafka_offset"], partition=0, topic="t")))
    return out


def play(evs: list[ChangeEvent]) -> tuple[dict[int, tuple[str, int]], list[ChangeEvent]]:
    """A one-key-at-a-time version guard: apply when newer; return rows and refused records."""
    stored: dict[int, tuple[SourcePosition, tuple[str, int]]] = {}
    refused = []
    for ev in evs:
        assert ev.position is not None
        assert ev.after is not None
        key = ev.after["id"]
        if key in stored and not stored[key][0] < ev.position:
            refused.append(ev)
            continue
        stored[key] = (ev.position, (ev.after["tier"], ev.after["n"]))
    return {k: row for k, (_, row) in stored.items()}, refused


def tracked(evs: list[ChangeEvent]) -> list[ChangeEvent]:
    tracker = SnapshotTracker()
    return [tracker.observe(e) for e in evs]


@pytest.mark.parametrize("source", ["postgres", "mariadb"])
def test_captured_stream_converges_and_refuses_no_newer_record(source: str) -> None:
    evs = tracked([e for _, e in events(source)])
    rows, refused = play(evs)
    assert rows == FINAL
    # Only redeliveries of what the sink holds may be refused: the incremental snapshot rows
    # (a chunk re-reads rows unchanged since their last event). Never a full-snapshot row.
    assert all(not is_snapshot(e.source) and e.source["snapshot"] == "incremental" for e in refused)


@pytest.mark.parametrize("source", ["postgres", "mariadb"])
def test_resnapshot_rows_beat_what_the_sink_held_before_the_reset(source: str) -> None:
    evs = tracked([e for _, e in events(source)])
    by_phase: dict[str, list[ChangeEvent]] = {}
    for (phase, _), e in zip(events(source), evs, strict=True):
        by_phase.setdefault(phase, []).append(e)
    held = max(e.position for e in by_phase["snapshot"] + by_phase["streamed_before_reset"] if e.position)
    resnapshot = [e.position for e in by_phase["resnapshot"] if e.position]
    after = [e.position for e in by_phase["streamed_after_resnapshot"] if e.position]
    assert held < min(resnapshot)
    assert max(resnapshot) < min(after)  # including the transaction open across the snapshot point
    assert after == sorted(after)


def test_pg_transaction_open_across_the_snapshot_point_is_first_after_it() -> None:
    """Captured: it began before the re-snapshot, committed after; it arrives as [null, lsn]."""
    (straddle, *_rest) = load("postgres_resnapshot.json")["streamed_after_resnapshot"]
    assert json.loads(straddle["source"]["sequence"])[0] is None
    assert first_after_snapshot(straddle["source"])


def test_pg_first_transaction_with_changes_below_the_snapshot_point_needs_the_point() -> None:
    """The same captured record with its change LSN moved below S (a longer transaction): by its
    own fields it sorts under the snapshot rows; with the snapshot point it sorts above them."""
    data = load("postgres_resnapshot.json")
    snap = parse_change_event(data["resnapshot"][-1])
    raw = json.loads(json.dumps(data["streamed_after_resnapshot"][0]))
    s_point = int(raw["source"]["lsn"])
    raw["source"]["lsn"] = s_point - 300
    raw["source"]["sequence"] = json.dumps([None, str(s_point - 300)])
    straddle = parse_change_event(raw)
    nxt = parse_change_event(data["streamed_after_resnapshot"][1])
    assert snap.position is not None
    assert straddle.position is not None
    assert nxt.position is not None
    assert straddle.position < snap.position  # alone it cannot know S
    tracker = SnapshotTracker()
    tracker.observe(snap)
    placed = tracker.observe(straddle).position
    assert placed is not None
    assert snap.position < placed < nxt.position


def test_pg_interleaved_transactions_follow_commit_order() -> None:
    evs = [parse_change_event(v) for v in load("postgres_interleaved.json")["streamed"]]
    positions = [e.position for e in evs]
    assert positions == sorted(positions)  # Kafka (commit) order, although raw LSNs interleave
    lsns = [int(e.source["lsn"]) for e in evs]
    assert lsns != sorted(lsns)


@pytest.mark.parametrize("source", ["postgres", "mariadb"])
def test_snapshot_floor_separates_what_the_snapshot_contains_from_what_follows(source: str) -> None:
    ph = events(source)
    snap = [e for p, e in ph if p == "resnapshot"]
    assert snap[0].position is not None
    floor = snapshot_floor(snap[0].position)
    before = [e.position for p, e in ph if p in ("snapshot", "streamed_before_reset")]
    after = [e.position for p, e in ph if p in ("resnapshot", "streamed_after_resnapshot", "incremental")]
    assert all(p is not None and p < floor for p in before)
    assert all(p is not None and floor <= p for p in after)
