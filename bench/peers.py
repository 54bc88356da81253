"""Each peer materializes one workload's replay topics into a fresh ``bench_*`` schema.

changefeed: the real ``changefeed worker`` (own group, own schema, the replay topics). JDBC: the
Debezium JDBC sink connector in its best configuration (BEST_JDBC). plain: bench.plainloop.
All are timed by the sink clock (first to last data write), which leaves start-up out for all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient

from bench import profile, resources
from bench.live import WorkerProc, row_writes, stored
from bench.replay import clock, drop_schema, first_batch
from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.sinks.roles import grant_sink_role

RUN_TIMEOUT_S = 300.0  # then a run is measured on what it applied so far (events < the replay's)
# The JDBC sink's best configuration for PostgreSQL (Debezium 3.6.0.Final): upserts by record key,
# batches of 5,000 (as changefeed's max_batch), the reduction buffer (one write per key per batch),
# UNNEST batch inserts, and a consumer that hands the task a whole batch per poll: max.poll.records
# 5,000 (Kafka's default 500 made every put a tenth of batch.size) and larger fetches (the private
# Connect worker allows the overrides: connector.client.config.override.policy=All).
BEST_JDBC = {
    "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
    "tasks.max": "1",
    "insert.mode": "upsert",
    "primary.key.mode": "record_key",
    "delete.enabled": "true",
    "schema.evolution": "basic",
    "batch.size": "5000",
    "use.reduction.buffer": "true",
    "dialect.postgres.unnest.insert.enabled": "true",
    "consumer.override.max.poll.records": "5000",
    "consumer.override.max.partition.fetch.bytes": str(8 * 1024 * 1024),
    "consumer.override.fetch.max.bytes": str(64 * 1024 * 1024),
    "consumer.override.fetch.min.bytes": str(64 * 1024),
    "consumer.override.fetch.max.wait.ms": "100",
}
# What was tried against it, in rep 1 (peer name -> overrides of BEST_JDBC): the previous default
# consumer (500 records a poll, 1 MiB per partition fetch).
JDBC_VARIANTS: dict[str, dict[str, str | None]] = {
    "jdbc-sink-consumer-defaults": {
        "consumer.override.max.poll.records": None,
        "consumer.override.max.partition.fetch.bytes": None,
        "consumer.override.fetch.max.bytes": None,
        "consumer.override.fetch.min.bytes": None,
        "consumer.override.fetch.max.wait.ms": None,
    },
}
FIELDS = {
    "customers": "id,email,first_name,last_name,phone,tier",
    "orders": "id,customer_id,status,total_cents,currency",
}


@dataclass
class PeerRun:
    peer: str
    workload: str
    rep: int
    events: int
    seconds: float
    events_s: float
    row_writes: int
    cpu_s_per_1k: float
    peak_rss_mb: float
    first_batch_events: int  # left out of events_s with its time (changefeed, plain loop; 0 for JDBC)
    wall_s: float  # launch → last write: start-up included (the other bound of the timing bias)
    wall_events_s: float
    # A group of consumers (the partitioned variant): events/s from the moment the group settled
    # (every member assigned, no rebalance pending) to the last write, over the events applied after
    # it; 0 when not measured. A member that joins after the first one started writing stops the
    # group for a rebalance, which a short replay would otherwise charge to the group's throughput.
    settled_events_s: float = 0.0
    settled_after_events: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Settle:
    """When a consumer group of ``members`` first settled, and how much was applied by then."""

    bootstrap: str
    group: str
    members: int
    at: float = 0.0  # epoch; 0 while not settled
    applied: int = 0
    _checked: float = 0.0
    _admin: AdminClient | None = None

    def poll(self, applied: Callable[[], int]) -> None:
        if self.at or time.monotonic() - self._checked < 0.25:
            return
        self._checked = time.monotonic()
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        if settled(self._admin, self.group, self.members):
            self.at, self.applied = time.time(), applied()


def settled(admin: AdminClient, group: str, members: int) -> bool:
    """The group is Stable with ``members`` members, each holding at least one partition."""
    try:
        d = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
    except Exception:  # not there yet: not settled
        return False
    return bool(
        d.state == ConsumerGroupState.STABLE
        and len(d.members) == members
        and all(m.assignment.topic_partitions for m in d.members)
    )


def _timed(
    dsn: str,
    schema: str,
    progress: Callable[[], int],
    total: int,
    pid: int | list[int] | None,
    alive: Callable[[], bool],
    settle: Settle | None = None,
) -> tuple[tuple[float, float], float, float, int]:
    """Wait until ``progress()`` reaches ``total`` (or RUN_TIMEOUT_S passes: the run is then measured on
    what it applied so far); return ((first, last) write epoch, cpu s in that window, peak RSS, applied).

    Several pids (a group of workers): CPU and RSS are the sums over their process trees. ``settle``
    records when the consumer group settled (see PeerRun.settled_events_s)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    applied = 0
    cpu_first: float | None = None
    peak = 0.0
    pids = [pid] if isinstance(pid, int) else pid
    with psycopg.connect(dsn) as conn:
        while True:
            if settle is not None:
                settle.poll(progress)
            if pids is not None:
                peak = max(peak, sum(resources.rss_mb(p) for p in pids))
                if cpu_first is None and clock(conn, schema) is not None:
                    cpu_first = sum(resources.cpu_seconds(p) for p in pids)
            applied = progress()
            if applied >= total or time.monotonic() > deadline:
                break
            if not alive():
                msg = f"peer writing {schema} stopped"
                raise RuntimeError(msg)
            time.sleep(0.1)
        cpu = sum(resources.cpu_seconds(p) for p in pids) - (cpu_first or 0.0) if pids is not None else 0.0
        time.sleep(0.3)
        c = clock(conn, schema)
    if c is None:
        msg = f"no write reached {schema}"
        raise RuntimeError(msg)
    return (c[0], c[1]), cpu, peak, min(applied, total)


def _result(
    peer: str,
    wl: str,
    rep: int,
    events: int,
    span: tuple[float, float],
    launched: float,
    cpu: float,
    rss: float,
    writes: int,
    first: int,
    settle: Settle | None = None,
) -> PeerRun:
    """events_s = events after the first committed batch / (first → last write): the first batch's
    read and decode happen before the window opens, so its events are left out with them."""
    secs, wall = max(1e-3, span[1] - span[0]), max(1e-3, span[1] - launched)
    per_1k = cpu / max(1, events) * 1000
    rate = (events - first) / secs
    run = PeerRun(peer, wl, rep, events, secs, rate, writes, per_1k, rss, first, wall, events / wall)
    if settle is not None and settle.at and span[1] - settle.at > 1.0 and events > settle.applied:
        run.settled_events_s = (events - settle.applied) / (span[1] - settle.at)
        run.settled_after_events = settle.applied
    return run


def _first(dsn: str, schema: str) -> int:
    with psycopg.connect(dsn) as conn:
        return first_batch(conn, schema)


def _row_writes_after_close(dsn: str, schema: str) -> int:
    """Row writes the peer issued; then its schema is dropped. The JDBC sink looks tables up by name
    across schemas: a previous repetition's table of the same name would capture its writes."""
    time.sleep(1.0)  # backends flush their table statistics when they exit
    with psycopg.connect(dsn) as conn:
        n = row_writes(conn, schema)
    drop_schema(dsn, schema)
    return n


def run_changefeed(
    settings: Settings,
    env: dict[str, str],
    wl: str,
    rep: int,
    ends: dict[str, int],
    logs: Path,
    publish: bool,
    profile_to: Path | None = None,
    processes: int = 1,
    peer: str = "",
) -> PeerRun:
    """The real worker; ``publish=False`` turns domain-event publishing off (upserts only, like the peers).

    ``profile_to``: sample the (first) worker with py-spy (non-blocking, 50 Hz, folded stacks) for the
    whole run. ``processes``: that many ``changefeed worker`` processes in one consumer group (the
    partitioned variant); CPU and RSS are summed over all of them.
    """
    dsn = conninfo_from(settings.sink_postgres)
    tag = ("cf" if publish else "cfn") + (f"x{processes}" if processes > 1 else "")
    schema, group = f"bench_{tag}_{wl}_{rep}", f"bench-{tag}-{wl}-{rep}"
    drop_schema(dsn, schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    grant_sink_role(settings, schema)  # the worker writes with its own login (changefeed sink grant)
    extra = {
        "CHANGEFEED_WORKER__APP_ID": group,
        "CHANGEFEED_PIPELINE__SINK_SCHEMA": schema,
        "CHANGEFEED_PIPELINE__TOPICS": json.dumps(sorted(ends)),
        "CHANGEFEED_PIPELINE__PUBLISH_DOMAIN_EVENTS": "true" if publish else "false",
    }
    total = sum(ends.values())
    launched = time.time()
    workers = [WorkerProc(env, logs / f"{group}-{i}.log", extra) for i in range(processes)]
    spy = profile.record(workers[0].pid, profile_to) if profile_to else None
    sink = psycopg.connect(dsn)
    settle = Settle(settings.kafka.bootstrap_servers, group, processes)
    try:
        span, cpu, rss, applied = _timed(
            dsn,
            schema,
            lambda: stored(sink, schema, group, tuple(ends)),
            total,
            [w.pid for w in workers],
            lambda: all(w.proc.poll() is None for w in workers),
            settle,
        )
    finally:
        sink.close()
        for w in workers:
            w.stop()
        if spy is not None:
            spy.wait(60)
    first = _first(dsn, schema)
    writes = _row_writes_after_close(dsn, schema)
    peer = peer or ("changefeed" if publish else "changefeed-nopub")
    return _result(peer, wl, rep, applied, span, launched, cpu, rss, writes, first, settle)


def _committed(bootstrap: str, group: str, ends: dict[str, int], partitions: int = 1) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        wanted = [TopicPartition(t, p) for t in ends for p in range(partitions)]
        parts = c.committed(wanted, timeout=10)
        return sum(max(0, p.offset) for p in parts)
    finally:
        c.close()


def jdbc_config(overrides: dict[str, str | None] | None = None, tasks: int = 1) -> dict[str, str]:
    """BEST_JDBC with ``overrides`` (None removes a key) and ``tasks.max``."""
    merged: dict[str, str | None] = {**BEST_JDBC, **(overrides or {}), "tasks.max": str(tasks)}
    return {k: v for k, v in merged.items() if v is not None}


def run_jdbc(
    settings: Settings,
    wl: str,
    rep: int,
    ends: dict[str, int],
    connect_pid: int,
    tasks: int = 1,
    partitions: int = 1,
    peer: str = "jdbc-sink",
    overrides: dict[str, str | None] | None = None,
) -> PeerRun:
    """The JDBC sink connector on the private Connect worker (CPU/RSS: Connect's whole JVM)."""
    dsn = conninfo_from(settings.sink_postgres)
    slug = peer.removeprefix("jdbc-sink").replace("-", "")
    schema, name = f"bench_jdbc{slug}_{wl}_{rep}", f"bench-jdbc{slug}-{wl}-{rep}"
    drop_schema(dsn, schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    pg = settings.sink_postgres
    include = ",".join(f"{t}:{f}" for t in ends for f in FIELDS[t.rsplit("_", 1)[1]].split(","))
    config = {
        **jdbc_config(overrides, tasks),
        "topics": ",".join(sorted(ends)),
        "connection.url": f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.database}?currentSchema={schema}",
        "connection.username": pg.user,
        "connection.password": pg.password.get_secret_value(),
        "field.include.list": include,
        "key.converter": "io.confluent.connect.avro.AvroConverter",
        "key.converter.schema.registry.url": settings.registry.url,
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": settings.registry.url,
    }
    base = f"http://{settings.connect.host}:{settings.connect.port}"
    total = sum(ends.values())
    launched = time.time()
    with httpx.Client(base_url=base, timeout=60) as http:
        http.put(f"/connectors/{name}/config", json=config).raise_for_status()

        def alive() -> bool:
            st = http.get(f"/connectors/{name}/status")
            return st.status_code != 200 or all(t["state"] != "FAILED" for t in st.json().get("tasks", []))

        bootstrap = settings.kafka.bootstrap_servers
        settle = Settle(bootstrap, f"connect-{name}", tasks) if partitions > 1 else None
        try:
            span, cpu, rss, applied = _timed(
                dsn,
                schema,
                lambda: _committed(bootstrap, f"connect-{name}", ends, partitions),
                total,
                connect_pid,
                alive,
                settle,
            )
        except RuntimeError:
            print(http.get(f"/connectors/{name}/status").text[:3000], file=sys.stderr)
            raise
        finally:
            http.delete(f"/connectors/{name}")
    first = _first(dsn, schema)
    writes = _row_writes_after_close(dsn, schema)
    return _result(peer, wl, rep, applied, span, launched, cpu, rss, writes, first, settle)


def run_plain(settings: Settings, env: dict[str, str], wl: str, rep: int, ends: dict[str, int]) -> PeerRun:
    dsn = conninfo_from(settings.sink_postgres)
    schema = f"bench_plain_{wl}_{rep}"
    drop_schema(dsn, schema)
    args = {
        "bootstrap": settings.kafka.bootstrap_servers,
        "registry": settings.registry.url,
        "dsn": dsn,
        "schema": schema,
        "group": f"bench-plain-{wl}-{rep}",
        "ends": ends,
    }
    launched = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.plainloop", json.dumps(args)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    if proc.returncode != 0:
        msg = f"plain loop failed ({proc.returncode})"
        raise RuntimeError(msg)
    res = json.loads(out.strip().splitlines()[-1])
    with psycopg.connect(dsn) as conn:
        c = clock(conn, schema)
    if c is None:
        msg = f"no write reached {schema}"
        raise RuntimeError(msg)
    total = sum(ends.values())
    writes = _row_writes_after_close(dsn, schema)
    cpu, rss = res["cpu_s"], res["max_rss_mb"]
    return _result(
        "plain-loop", wl, rep, total, (c[0], c[1]), launched, cpu, rss, writes, _first(dsn, schema)
    )
