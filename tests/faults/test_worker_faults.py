"""K1, K2, K5, K6, K7: crash, pause and rewind the workers (and the sink) under load.

Every scenario ends with the oracle (``FaultPipeline.oracle``): source ≡ sink via verify,
0 version regressions in the sink's audit log, no dead letters it did not inject.
Scenarios share one consumer group and pick up where the previous one left off.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from typing import Any

import pytest
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec

from streams.demo.measure import read_changes
from streams.pipeline import dlq_replay as dlq
from streams.pipeline.loop import FAULT_EXIT_CODE
from streams.sinks import reset_offsets
from tests.faults.pipeline import FaultPipeline, WorkerProc, Workers, fault_pipeline
from tests.polling import poll

__all__ = ["fault_pipeline"]

# The bounds of the fault scenarios (tests/faults/README.md), not tighter: the box has 2 cores
# shared with two stacks.
RESUME_LIMIT_S = 30.0  # K1: processing resumes < 30 s after each restart
CATCH_UP_LIMIT_S = 60.0  # K1/K5: lag 0 within 60 s of the last event / of the sink's return
SESSION_TIMEOUT_S = 10.0  # the worker's session timeout (WorkerSettings)
# K1: events on the worker's topics the run must reach (>= 50k); override for a quick run.
K1_EVENTS = int(os.environ.get("CHANGEFEED_FAULTS_K1_EVENTS", "50000"))
K1_RATE = float(os.environ.get("CHANGEFEED_FAULTS_K1_RATE", "400"))  # source tx/s asked of the loader
KILL_EVERY_S = 10.0
K1_MIN_KILLS = 3


def _processed(fp: FaultPipeline) -> int:
    return sum(fp.stored_offsets().values())


def _topic_events(fp: FaultPipeline) -> int:
    return sum(fp.end_offsets(fp.topics).values())


class ChunkedLoad(threading.Thread):
    """``changefeed load`` in 10 s chunks until the topics gained ``target`` events and the
    test set ``enough`` (a slow restart must not end the load before the kills it needs)."""

    def __init__(self, fp: FaultPipeline, rate: float, target: int) -> None:
        super().__init__(name="k1-load", daemon=True)
        self.fp, self.rate, self.target = fp, rate, target
        self.start_events = _topic_events(fp)
        self.transactions, self.seconds = 0, 0.0
        self.error: BaseException | None = None
        self.finished_at: float | None = None
        self.enough = threading.Event()

    def run(self) -> None:
        try:
            while not self.enough.is_set() or _topic_events(self.fp) - self.start_events < self.target:
                report = self.fp.run_load(self.rate, 10.0)
                self.transactions += report.tally.total
                self.seconds += report.elapsed_s
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        finally:
            self.finished_at = time.monotonic()


def _resume_time(fp: FaultPipeline, restarted: float, worker: WorkerProc, limit_s: float) -> float:
    """Seconds from a restart until the sink's stored offsets move again."""
    base = _processed(fp)
    poll(lambda: worker.alive() and _processed(fp) > base, limit_s + 30, "processing to resume", 0.25)
    return round(time.monotonic() - restarted, 1)


@pytest.mark.scenario("K1")
@pytest.mark.timeout(1800)
def test_k1_sigkill_worker_every_10s_under_load(
    fault_pipeline: FaultPipeline, scenario_numbers: dict[str, Any]
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    dlq_before = fp.dlq_counts()
    with fp.workers() as ws:
        w = ws.start_one()
        fp.wait_lag_zero(120)
        load = ChunkedLoad(fp, K1_RATE, K1_EVENTS)
        load.start()
        resumes: list[float] = []
        last_resume = time.monotonic()
        try:
            while load.is_alive():
                if time.monotonic() - last_resume < KILL_EVERY_S:
                    time.sleep(0.2)  # the ~10 s between kills
                    continue
                ws.kill(w)
                w = ws.restart(w)
                restarted = time.monotonic()
                resumes.append(_resume_time(fp, restarted, w, RESUME_LIMIT_S))
                last_resume = time.monotonic()
                if len(resumes) >= K1_MIN_KILLS:
                    load.enough.set()
        finally:
            load.enough.set()  # on a failure too: the load must end before the next scenario
        load.join()
        assert load.error is None, load.error
        assert load.finished_at is not None
        caught_up = fp.wait_lag_zero(CATCH_UP_LIMIT_S + 60)  # measured; asserted below
        lag_zero_after_last_event = round(time.monotonic() - load.finished_at, 1)
        numbers.update(
            {
                "events": _topic_events(fp) - load.start_events,
                "load_tx": load.transactions,
                "load_tx_per_s": round(load.transactions / load.seconds, 1) if load.seconds else 0,
                "kills": len(resumes),
                "resume_after_restart_s": resumes,
                "resume_max_s": max(resumes, default=0.0),
                "lag0_after_last_event_s": lag_zero_after_last_event,
                "lag0_wait_s": caught_up,
            }
        )
        ws.check_alive()
        fp.oracle(numbers, dlq_before=dlq_before)
    assert numbers["events"] >= K1_EVENTS
    assert len(resumes) >= K1_MIN_KILLS, "the run was too short to kill the worker repeatedly"
    assert max(resumes) < RESUME_LIMIT_S, f"processing resumed too late after a restart: {resumes}"
    assert lag_zero_after_last_event <= CATCH_UP_LIMIT_S


def _replay_positions(
    fp: FaultPipeline, start: dict[tuple[str, int], int], end: dict[tuple[str, int], int]
) -> set[bytes]:
    """Source positions of the change events in [start, end) per partition (row topics only)."""
    out: set[bytes] = set()
    s = fp.settings
    for topic in {t for t, _ in end}:
        if topic.startswith("outbox."):
            continue  # outbox events write no rows
        for event in read_changes(s.kafka.bootstrap_servers, s.registry.url, topic, start, end):
            if event.position is not None:
                out.add(event.position.to_bytes())
    return out


@pytest.mark.scenario("K2")
@pytest.mark.timeout(600)
def test_k2_crash_after_sink_commit_before_kafka_commit(
    fault_pipeline: FaultPipeline, scenario_numbers: dict[str, Any]
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    dlq_before = fp.dlq_counts()
    with fp.workers() as ws:  # settle whatever earlier scenarios left
        ws.start_one()
        fp.wait_lag_zero(180)
    fp.run_load(rate=200, duration_s=10)  # a backlog, no worker running
    fp.wait_quiet()  # capture drained: the backlog is fixed before the crash
    committed_before = fp.kafka_committed()
    stored_before = fp.stored_offsets()
    with fp.workers(env={"CHANGEFEED_PIPELINE__FAULT_EXIT_AFTER_FLUSHES": "1"}) as ws:
        crasher = ws.start_one()
        code = crasher.wait_exit(180)
    assert code == FAULT_EXIT_CODE, f"the worker did not die in the hook (exit {code}); see {crasher.log}"
    stored_after = fp.stored_offsets()
    committed_after = fp.kafka_committed()
    assert committed_after == committed_before, "Kafka learned of the crashed flush"
    applied_by_crash = sum(stored_after.get(tp, 0) - stored_before.get(tp, 0) for tp in stored_after)
    assert applied_by_crash > 0, "the crashing flush committed nothing to the sink"
    # Kafka resumes from its committed offset: everything in [committed, sink offset) is replayed.
    replay_from = {tp: committed_after.get(tp, 0) for tp in stored_after}
    replayed = _replay_positions(fp, replay_from, stored_after)
    mark = fp.audit_mark()
    # The sink's offsets would skip the replay entirely (the normal path); forget them so the
    # restarted worker resumes from Kafka's committed offsets and the version guard alone must
    # make every replayed event a no-op.
    with fp.sink() as conn:
        for topic in fp.topics:
            reset_offsets(conn, fp.group, topic)
    with fp.workers() as ws:
        w = ws.start_one()
        fp.wait_lag_zero(180)
        assert "no sink offset, committed/earliest" in w.text()
    written = fp.audit_moves(mark)
    # A replayed event that wrote its row would move the row to its position. A write that keeps
    # the row's position is a lookup refresh (order_view's copied customer columns, after a newer,
    # not replayed customers change): counted apart, it is not a replay (a CI run saw 25 of them).
    replay_writes = sum(1 for _, old, new in written if new in replayed and old != new)
    refreshes = sum(1 for _, old, new in written if new in replayed and old == new)
    numbers.update(
        {
            "events_applied_by_crashed_flush": applied_by_crash,
            "kafka_behind_sink_by": sum(stored_after[tp] - replay_from[tp] for tp in stored_after),
            "replayed_events": sum(stored_after[tp] - replay_from[tp] for tp in stored_after),
            "replayed_row_events": len(replayed),
            "rows_changed_by_replay": replay_writes,
            "lookup_refreshes_of_replayed_rows": refreshes,
            "row_writes_after_restart": len(written),
        }
    )
    fp.oracle(numbers, dlq_before=dlq_before)
    assert replay_writes == 0, "a replayed event changed a row"
    assert len(replayed) > 0, "nothing was replayed: the scenario proved nothing"


# Any retry the outage caused: the flush, or a record whose previous-row lookup (customers
# updates, see streams/sinks/previous.py) met the down sink first; both back off the same way.
_RETRY = re.compile(r"failed, retrying in ([0-9.]+) s: sink ")
_FLUSH_RETRY = re.compile(r"sink flush failed, retrying in ([0-9.]+) s")


@pytest.mark.scenario("K5")
@pytest.mark.timeout(600)
def test_k5_sink_postgres_down_60s(fault_pipeline: FaultPipeline, scenario_numbers: dict[str, Any]) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    dlq_before = fp.dlq_counts()
    outage_s = 60.0
    with fp.workers() as ws:
        w = ws.start_one()
        fp.wait_lag_zero(180)
        load = fp.start_load(rate=100, duration_s=10 + outage_s)
        # Keeping up: under load some records are always in flight, so "a batch or less".
        poll(lambda: load.writes > 200 and fp.lag() < 500, 60, "the worker to keep up before the outage")
        fp.stop_service("sink-postgres", signal.SIGINT)  # fast shutdown: connections terminated
        stopped = time.monotonic()
        committed_max: dict[tuple[str, int], int] = {}
        while time.monotonic() - stopped < outage_s:
            for tp, o in fp.kafka_committed().items():
                committed_max[tp] = max(o, committed_max.get(tp, 0))
            assert w.alive(), f"the worker died while the sink was down; see {w.log}"
            time.sleep(2.0)  # sampling Kafka's committed offsets during the outage
        events_during_outage = fp.end_offsets(fp.topics)
        # The sink's offsets at the outage, exactly: nothing could change them while it was down,
        # and the worker is held until they are read back (a snapshot taken before the stop
        # raced a COMMIT already on the wire).
        ws.pause(w)
        restart_s = fp.restart_services()
        stored_at_stop = fp.stored_offsets()
        ws.resume(w)
        returned = time.monotonic()
        load.result(120)
        poll(lambda: fp.lag() == 0, CATCH_UP_LIMIT_S + 60, "lag 0 after the sink returned", 0.5)
        lag0 = round(time.monotonic() - returned, 1)
        delays = [float(d) for d in _RETRY.findall(w.text())]
        ws.check_alive()
        numbers.update(
            {
                "outage_s": round(returned - stopped, 1),
                "sink_restart_s": restart_s,
                "events_during_outage": sum(
                    events_during_outage[tp] - stored_at_stop.get(tp, 0) for tp in events_during_outage
                ),
                "kafka_commits_past_sink_during_outage": sum(
                    max(0, o - stored_at_stop.get(tp, 0)) for tp, o in committed_max.items()
                ),
                "sink_retries": len(delays),
                "flush_retries": len(_FLUSH_RETRY.findall(w.text())),
                "retry_delays_s": sorted(set(delays)),
                "lag0_after_return_s": lag0,
            }
        )
        fp.oracle(numbers, dlq_before=dlq_before)
    assert numbers["kafka_commits_past_sink_during_outage"] == 0, "offsets committed for unapplied events"
    assert len(delays) >= 3, "no sink retries logged while the sink was down"
    assert delays[0] < max(delays), "the retry delay never grew"
    assert max(delays) == fp.settings.pipeline.backoff_max_s, "the backoff never reached its cap"
    assert numbers["dead_letters"] == 0
    assert lag0 <= CATCH_UP_LIMIT_S, f"lag not 0 within {CATCH_UP_LIMIT_S:.0f} s after the sink returned"


def _conflicts(fp: FaultPipeline) -> int:
    with fp.sink() as conn:
        row = conn.execute("SELECT count(*) FROM changefeed_conflicts").fetchone()
    return int(row[0]) if row else 0


_REFUSED = re.compile(r"version guard refused (\d+) duplicate and (\d+) stale writes")


def _pause_between_flushes(ws: Workers, timeout_s: float) -> WorkerProc:
    """SIGSTOP a busy worker just after one of its sink transactions ended.

    It then holds a batch it has read but not yet flushed (the backlog keeps getmany full), which
    is the write that comes back late; stopping it inside a transaction would instead make the
    other worker wait on its row locks.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = ws.in_transaction()
        if busy:
            name = sorted(busy)[0]
            while name in ws.in_transaction() and time.monotonic() < deadline:
                pass  # spinning: the transaction lasts milliseconds
            w = next(w for w in ws.alive() if w.name == name)
            ws.pause(w)
            # A statement already on the wire still runs; then the session state is frozen.
            poll(lambda n=name: n not in ws.running_statement(), 10, "the paused worker's statement", 0.05)
            if name not in ws.in_transaction():
                return w
            ws.resume(w)  # it began its next flush between the check and the stop: try again
    raise AssertionError("no worker flushed within the deadline")


@pytest.mark.scenario("K6")
@pytest.mark.timeout(600)
def test_k6_paused_worker_zombie_writes_rejected(
    fault_pipeline: FaultPipeline, scenario_numbers: dict[str, Any]
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    dlq_before = fp.dlq_counts()
    pause_s = 2 * SESSION_TIMEOUT_S + 5
    with fp.workers() as ws:
        ws.start(2)
        fp.wait_lag_zero(180, workers=ws)
        conflicts_before = _conflicts(fp)
        load = fp.start_load(rate=150, duration_s=60)
        poll(lambda: load.writes > 300, 60, "load to start")
        for w in ws.alive():  # a short pause (< session timeout) builds a backlog for big batches
            ws.pause(w)
        time.sleep(4.0)  # the backlog's size, not synchronization
        for w in ws.alive():
            ws.resume(w)
        try:
            zombie = _pause_between_flushes(ws, 60)
            paused = time.monotonic()
            other = next(w for w in ws.alive() if w is not zombie)
            zombie_log_at_pause = len(zombie.text())
            processed = _processed(fp)
            # The other worker takes the zombie's partitions over once the session times out.
            poll(lambda: _processed(fp) > processed + 100, pause_s + 60, "the other worker to go on")
            while time.monotonic() - paused < pause_s:
                time.sleep(0.5)  # keeping the zombie stopped well past the session timeout
            ws.resume(zombie)
        finally:
            load.result(180)  # on a failure too: no load may leak into the next scenario
        fp.wait_lag_zero(180, workers=ws)
        late = zombie.text()[zombie_log_at_pause:]
        refused = [(int(a), int(b)) for a, b in _REFUSED.findall(late)]
        numbers.update(
            {
                "paused_s": pause_s,
                "zombie_late_flush_refused_duplicates": sum(a for a, _ in refused),
                "zombie_late_flush_refused_stale": sum(b for _, b in refused),
                "zombie_kafka_commit_refused": "kafka commit skipped" in late,
                "zombie_rejoined": "assigned " in late,
                "conflicts_ledgered": _conflicts(fp) - conflicts_before,
                "both_alive": zombie.alive() and other.alive(),
            }
        )
        ws.check_alive()
        fp.oracle(numbers, dlq_before=dlq_before)
    assert numbers["both_alive"], "a worker died after the pause"


@pytest.mark.scenario("K7")
@pytest.mark.timeout(900)
def test_k7_reset_to_earliest_replay_is_noop(
    fault_pipeline: FaultPipeline, scenario_numbers: dict[str, Any]
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    fp.wait_quiet()  # a replay is compared against a sink no new event may change
    with fp.workers() as ws:  # settle first, then no member may be in the group for the reset
        ws.start_one()
        fp.wait_lag_zero(180)
    fp.converge(60)
    dlq_before = fp.dlq_counts()
    old_letters = _dead_letter_origins(fp)
    mark, before = fp.audit_mark(), fp.table_hashes()
    ends = fp.end_offsets(fp.topics)
    # Both records of progress must go: the sink's offsets win over Kafka's on assignment, and
    # with no sink offset the worker falls back to Kafka's committed offset.
    admin = KafkaAdminClient(bootstrap_servers=fp.settings.kafka.bootstrap_servers)
    try:
        specs = {TopicPartition(t, p): OffsetSpec.EARLIEST for t, p in ends}
        reset = admin.reset_group_offsets(fp.group, specs)
    finally:
        admin.close()
    assert all(r["error"] is None or r["error"].errno == 0 for r in reset.values()), reset
    with fp.sink() as conn:
        removed = sum(reset_offsets(conn, fp.group, t) for t in fp.topics)
    started = time.monotonic()
    with fp.workers() as ws:
        w = ws.start_one()
        fp.wait_lag_zero(600)
        replay_s = round(time.monotonic() - started, 1)
        assert "no sink offset, committed/earliest" in w.text()
    after = fp.table_hashes()
    new_letters = [
        o for t, os_ in _dead_letter_origins(fp).items() for o in os_[len(old_letters.get(t, [])) :]
    ]
    numbers.update(
        {
            "replayed_events": sum(ends.values()),
            "replay_s": replay_s,
            "sink_offsets_removed": removed,
            "tables_identical": before == after,
            "rows_updated": fp.audit_writes(mark),
            "dead_letters_replayed": len(new_letters),
        }
    )
    # A full replay dead-letters no record that was not dead-lettered before; since dead letters
    # are written once per source offset (the worker reads the DLQ's tail), it writes none again.
    fp.oracle(numbers, dlq_before=dlq_before, injected_dead_letters=len(new_letters))
    old = {o for os_ in old_letters.values() for o in os_}
    assert set(new_letters) <= old, "the replay dead-lettered a record never dead-lettered before"
    assert before == after, "the sink changed under a replay"
    assert numbers["rows_updated"] == 0


def _dead_letter_origins(fp: FaultPipeline) -> dict[str, list[tuple[str, str, str]]]:
    """Per source topic, where each of its dead letters came from, in DLQ order."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for topic in fp.topics:
        for d in dlq.read(fp.settings.kafka.bootstrap_servers, topic):
            why = d.why
            origin = (
                why.get("source_topic", ""),
                why.get("source_partition", ""),
                why.get("source_offset", ""),
            )
            out.setdefault(topic, []).append(origin)
    return out
