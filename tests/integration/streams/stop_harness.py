"""Repro harness for a worker that does not stop: two split workers of one group, one paused.

Loops the read-your-writes paused-partition scenario on private topics: worker A consumes topic
A, worker B topic B (one group, one sink schema); B is SIGSTOPped past the session timeout while
records keep arriving on both, then both get SIGCONT + SIGTERM at once, as that test's cleanup
does. Prints each worker's time to exit; a worker still alive after ``--hang-s`` gets SIGUSR1
(mode dumps every task's stack into its log) and is then killed. Needs the shared stack:

    python -m tests.integration.streams.stop_harness --rounds 10
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.settings import load_settings
from streams.sinks import conninfo_from
from streams.sinks.roles import grant_sink_role
from tests.integration.streams.helpers import Crafter, Worker


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--rounds", type=int, default=5)
    args.add_argument("--pause-s", type=float, default=14.0)
    args.add_argument("--hang-s", type=float, default=40.0)
    opts = args.parse_args()
    settings = load_settings()
    tag = uuid.uuid4().hex[:8]
    topics = [f"itstop{tag}{x}.public.customers" for x in "ab"]
    schema = f"it_stop_{tag}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    admin.create_topics([NewTopic(t, 2, 1) for t in topics])
    sink = psycopg.connect(conninfo_from(settings.sink_postgres), autocommit=True)
    sink.execute(f'CREATE SCHEMA "{schema}"')
    grant_sink_role(settings, schema)
    crafter = Crafter(settings)
    folder = Path(tempfile.mkdtemp(prefix="stop-harness-"))
    stop_load = threading.Event()
    lsn = [10_000]

    def load() -> None:  # a few records a second on both topics, as the steady load does
        while not stop_load.is_set():
            for t in topics:
                lsn[0] += 1
                crafter.send(t, *crafter.message(lsn[0] % 50 + 1, lsn[0], "u"))
            time.sleep(0.1)  # the load's pace, not synchronization

    feeder = threading.Thread(target=load, daemon=True)
    feeder.start()
    hung = 0
    try:
        for n in range(opts.rounds):
            group = f"it-stop-{tag}-{n}"
            ws = [
                Worker(group, schema, folder / f"r{n}-{x}.log", [t])
                for x, t in zip("ab", topics, strict=True)
            ]
            time.sleep(15)  # let both join and consume (a harness, not a test)
            ws[1].proc.send_signal(signal.SIGSTOP)
            time.sleep(opts.pause_s)
            for w in ws:
                w.proc.send_signal(signal.SIGCONT)
                w.proc.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            took: list[str] = []
            for w in ws:
                try:
                    w.proc.wait(max(0.1, opts.hang_s - (time.monotonic() - t0)))
                    took.append(f"{time.monotonic() - t0:.1f}s rc={w.proc.returncode}")
                except subprocess.TimeoutExpired:
                    hung += 1
                    w.proc.send_signal(signal.SIGUSR1)
                    time.sleep(2)
                    w.proc.kill()
                    w.proc.wait()
                    took.append(f"HUNG (log {w.log})")
            print(f"round {n}: a {took[0]}, b {took[1]}", flush=True)
    finally:
        stop_load.set()
        feeder.join(5)
        crafter.close()
        sink.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.delete_topics([t for t in admin.list_topics() if any(t.startswith(x) for x in topics)])
        admin.close()
    print(f"{hung} hung worker(s) in {opts.rounds} rounds; logs in {folder}")


if __name__ == "__main__":
    main()
