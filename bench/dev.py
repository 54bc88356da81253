"""Engine work between benchmarks: one replay data set, then single peers on it, on the running stack.

``make bench`` takes 15–50 minutes and its own stack; tuning the worker needs a loop of a minute.

    python -m bench.dev prepare --events 200000 --out /tmp/replay.json [--workloads ins,upd] [--partitions 4]
    python -m bench.dev run --ends /tmp/replay.json --workload ins --peer cf [--processes 2] [--profile]

``prepare`` runs the bench's seeded set-based workloads on the stack's customers source (the one
``changefeed up`` started, or the one ``CHANGEFEED_STACK__STATE_DIR`` names), waits for Debezium to
settle, and copies each workload's range to fresh replay topics (and, with ``--partitions``, to keyed
ones of that many partitions). The changes stay in the stack's customers topic: anything that reads
it from its start (the demo's worker, some integration tests) has them to read first afterwards, so
prepare on a stack of your own or start a fresh one (``changefeed down --purge``) when you are done.

``run`` replays one topic set through one peer into a fresh sink schema and prints events/s, CPU s
per 1,000 events and peak RSS (``bench.peers``, as ``make bench`` does); with ``--profile``, where the
first worker spent its time (py-spy). Peers: ``cf`` (as shipped, publishing domain events), ``cfn``
(publishing off), ``plain`` (the plain confluent-kafka + fastavro + psycopg loop), ``jdbc`` (the
Debezium JDBC sink with Kafka's consumer defaults, ``--processes`` as ``tasks.max``: ``make bench``
also tunes its consumer, which needs a Connect worker that allows client overrides).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from bench import bulk, peers, profile, replay, stack
from bench.workloads import WORKLOADS, Workload
from streams.settings import Settings, load_settings
from streams.sinks import conninfo_from

SOURCE_TOPIC = "customers.public.customers"
SEED_KEYS = 10_000  # rows the replay inserts before the workload starts


def _end(bootstrap: str, topic: str) -> int:
    """The topic's end offset; 0 while it does not exist (a fresh stack: Debezium creates it with
    the first change it captures)."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-dev-probe"})
    try:
        return int(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError._UNKNOWN_PARTITION:
            return 0
        raise
    finally:
        c.close()


def _run_on_fresh_keys(s: Settings, w: Workload, events: int, tag: str) -> None:
    """The workload over keys the replay itself creates first: an update of a row made before the
    replay (with a TOASTed value the sink never saw) would be dead-lettered, as it should."""
    source = bulk.BulkSource(s, w, 8, tag, tx_rows=bulk.TOP_UP_TX_ROWS)
    try:
        ids = source.pg.execute(
            bulk._INSERT + " RETURNING id",
            (f"{tag}{w.short}seed", 0, 1, bulk.BIG, 0, SEED_KEYS - 1),
        ).fetchall()
        source.pg.commit()
        source.keys = [int(r[0]) for r in ids]
        source.hot = source.keys[: max(1, len(source.keys) // 10)]
        source.step = SEED_KEYS // source.tx_rows + 1  # inserted emails stay unique
        done = 0
        while done < events:
            done += source.tx()
    finally:
        source.close()


def prepare(events: int, out: Path, names: list[str], partitions: int) -> None:
    s = load_settings()
    boot = s.kafka.bootstrap_servers
    tag = time.strftime("%H%M%S") + uuid.uuid4().hex[:3]
    doc: dict[str, dict[str, int]] = {}
    for w in WORKLOADS:
        if w.short not in names:
            continue
        lo = _end(boot, SOURCE_TOPIC)
        print(f"{w.name}: {events:,} set-based changes from offset {lo:,}", flush=True)
        _run_on_fresh_keys(s, w, events, f"dev{tag}")
        hi = bulk.settled_end(boot, SOURCE_TOPIC)
        target = replay.replay_topic(w.short, SOURCE_TOPIC, f"dev{tag}")
        doc[w.short] = {target: replay.copy_range(boot, SOURCE_TOPIC, target, lo, hi, s.registry.url)}
        if partitions > 1:
            pt = f"{target}_p{partitions}"
            doc[f"{w.short}_p{partitions}"] = {
                pt: replay.copy_range(boot, SOURCE_TOPIC, pt, lo, hi, s.registry.url, partitions)
            }
        print(f"  {doc}", flush=True)
    out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {out}")


def run(ends_file: Path, workload: str, peer: str, processes: int, with_profile: bool) -> None:
    s = load_settings()
    env = stack.bench_env(s)
    replay.install_clock(conninfo_from(s.sink_postgres))  # the audit trigger the timing reads
    ends = json.loads(ends_file.read_text())[workload]
    rep = int(time.time()) % 100000  # fresh schema and group per run
    logs = Path(tempfile.mkdtemp(prefix="bench-dev-"))
    prof = logs / "profile.txt" if with_profile else None
    parts = int(workload.split("_p")[1]) if "_p" in workload else 1
    if peer == "plain":
        res = peers.run_plain(s, env, workload, rep, ends)
    elif peer == "jdbc":  # Kafka's consumer defaults: `changefeed up`'s Connect refuses client overrides
        connect = stack.component_pids(s)["connect"]
        variant = peers.JDBC_VARIANTS["jdbc-sink-consumer-defaults"]
        res = peers.run_jdbc(s, workload, rep, ends, connect, processes, parts, "jdbc-sink-dev", variant)
    else:
        res = peers.run_changefeed(
            s, env, workload.split("_")[0], rep, ends, logs, peer == "cf", prof, processes, peer
        )
    print(
        f"{peer} x{processes} {workload}: {res.events_s:,.0f} ev/s over {res.seconds:.1f} s, "
        f"CPU {res.cpu_s_per_1k:.4f} s/1k, peak RSS {res.peak_rss_mb:.0f} MB, "
        f"row writes {res.row_writes:,} (logs {logs})"
    )
    if res.settled_events_s:
        print(
            f"  after the group settled: {res.settled_events_s:,.0f} ev/s"
            f" ({res.settled_after_events:,} applied before)"
        )
    if prof is not None and prof.exists():
        for kind, rows in profile.summarize(prof, top=25).items():
            print(f"{kind}:")
            for frame, share in rows:
                print(f"  {share:7.1%}  {frame}" if kind != "samples" else f"  {share:.0f} samples")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workloads", default="ins,upd")
    p.add_argument("--partitions", type=int, default=1)
    r = sub.add_parser("run")
    r.add_argument("--ends", type=Path, required=True)
    r.add_argument("--workload", required=True, help="ins, upd, mix, or ins_p4 after --partitions 4")
    r.add_argument("--peer", choices=("cf", "cfn", "plain", "jdbc"), default="cf")
    r.add_argument("--processes", type=int, default=1)
    r.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a.events, a.out, a.workloads.split(","), a.partitions)
    else:
        run(a.ends, a.workload, a.peer, a.processes, a.profile)


if __name__ == "__main__":
    main()
