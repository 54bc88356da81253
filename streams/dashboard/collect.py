"""One look at the whole pipeline, as plain data (the page and ``/api/snapshot`` render it).

Each part reuses what the CLI already computes: connectors, slots and binlogs from
``streams.connect.health.gather`` (``changefeed status``), lag and last positions from
``streams.verify.lag`` (``changefeed lag``), conflicts from the sink's ledger (``changefeed
conflicts``), dead letters from the ``<topic>.dlq`` topics (``changefeed dlq show``). A part that
cannot be read becomes an error line in the snapshot, never an exception: the page must still
show what it can while a service is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from streams.connect.heal import first_line
from streams.connect.health import gather
from streams.dashboard.atomic import AtomicRow, Reading, readings
from streams.project import load_project
from streams.registry.client import RegistryClient
from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.sinks.ddl import CONFLICTS_TABLE
from streams.verify import resolve_project
from streams.verify.lag import applied_positions, measure_lag, topics_for

T = TypeVar("T")
_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Connector:
    name: str
    state: str  # the connector's own state, or FAILED when a task failed
    tasks: list[tuple[int, str]]
    failure: str = ""  # the first failure's first trace line


@dataclass(frozen=True)
class TableRow:
    table: str  # schema.table in the sink
    topics: list[str]
    applied_offsets: int  # sum of the sink's stored next offsets over the table's partitions
    lag_events: int
    lag_seconds: float
    conflicts: int
    dead_letters: int
    position: str  # newest source position the table holds


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # slot | binlog
    retained_bytes: int | None  # WAL held by the slot / binlog behind the server (None: purged)
    detail: str
    problem: str = ""


@dataclass(frozen=True)
class Worker:
    client_id: str
    host: str
    partitions: list[str]


@dataclass(frozen=True)
class Subject:
    subject: str
    version: int
    schema_id: int


@dataclass
class Snapshot:
    at: float  # unix time of the look
    group: str
    connectors: list[Connector] = field(default_factory=list)  # every connector on the cluster
    project_connectors: list[str] = field(default_factory=list)  # the project's connector files
    tables: list[TableRow] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    group_state: str = ""
    workers: list[Worker] = field(default_factory=list)
    subjects: list[Subject] = field(default_factory=list)
    other_subjects: int = 0  # subjects of topics this project neither reads nor publishes
    # sink table -> cumulative end-to-end latency histogram ({le: count}) over the workers scraped
    latency_buckets: dict[str, dict[float, float]] = field(default_factory=dict)
    # atomic source -> its max_transaction_wait_s (the tables file's [[sources]])
    atomic_declared: dict[str, float] = field(default_factory=dict)
    atomic_readings: dict[str, Reading] = field(default_factory=dict)  # summed over the workers scraped
    atomic: list[AtomicRow] = field(default_factory=list)  # judged by a Watch (streams.dashboard.atomic)
    problems: list[str] = field(default_factory=list)  # what is broken (health's lines)
    errors: list[str] = field(default_factory=list)  # parts that could not be read
    took_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["latency_buckets"] = {
            t: {str(k): v for k, v in b.items()} for t, b in self.latency_buckets.items()
        }
        return out


def _part(snapshot: Snapshot, what: str, read: Callable[[], T], default: T) -> T:
    try:
        return read()
    except Exception as exc:  # any part may be down; say which and go on
        snapshot.errors.append(f"{what}: {first_line(str(exc)) or type(exc).__name__}")
        return default


def connectors_and_sources(settings: Settings, snap: Snapshot) -> None:
    health = gather(settings)
    snap.problems.extend(health.problems())
    for c in health.connectors:
        state = "FAILED" if c.failed else c.state
        snap.connectors.append(Connector(c.name, state, list(c.tasks), c.failures[0] if c.failures else ""))
    for s in health.slots:
        held = "active" if s.active else "inactive"
        detail = f"{held}, {s.wal_status or '?'}, unconfirmed {s.unconfirmed_bytes} B"
        snap.sources.append(Source(f"slot {s.slot}", "slot", s.retained_bytes, detail, s.problem))
    for b in health.binlogs:
        detail = (
            f"connector at {b.connector_file}:{b.connector_pos}, server at {b.server_file}:{b.server_pos}"
        )
        snap.sources.append(Source(f"binlog {b.connector}", "binlog", b.behind_bytes, detail, b.problem))
    for p in health.sources:
        if not p.ok:
            snap.sources.append(Source(p.name, "login", None, p.address, p.error))
    if health.connect_error:
        snap.errors.append(f"Kafka Connect: {health.connect_error}")


def _kafka_topics(bootstrap: str) -> tuple[set[str], dict[str, int]]:
    """Existing topics, and the dead letters each ``<topic>.dlq`` holds (end - beginning)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        topics = set(consumer.topics())
        tps = [
            TopicPartition(t, p)
            for t in topics
            if t.endswith(".dlq")
            for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = consumer.end_offsets(tps) if tps else {}
        starts = consumer.beginning_offsets(tps) if tps else {}
    finally:
        consumer.close()
    dlq: dict[str, int] = {}
    for tp in tps:
        source = tp.topic.removesuffix(".dlq")
        dlq[source] = dlq.get(source, 0) + int(ends.get(tp) or 0) - int(starts.get(tp) or 0)
    return topics, dlq


def conflict_counts(sink: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    """Ledger entries per sink table (``changefeed conflicts`` lists them one by one)."""
    exists = sink.execute("SELECT to_regclass(%s)", [f"{schema}.{CONFLICTS_TABLE}"]).fetchone()
    if exists is None or exists[0] is None:
        sink.rollback()
        return {}
    rows = sink.execute(
        sql.SQL("SELECT sink_table, count(*) FROM {} GROUP BY 1").format(
            sql.Identifier(schema, CONFLICTS_TABLE)
        )
    ).fetchall()
    sink.rollback()
    return {str(t): int(n) for t, n in rows}


def tables(settings: Settings, snap: Snapshot, schema: str) -> None:
    existing, dlq = _kafka_topics(settings.kafka.bootstrap_servers)
    # What the workers consume (as `changefeed lag` derives it), not every topic of that name.
    topics = sorted(set(subscriptions(settings)) & existing)
    with psycopg.connect(conninfo_from(settings.sink_postgres), connect_timeout=int(_TIMEOUT_S)) as sink:
        mappings, _ = resolve_project(settings, schema, sink)
        per_table = {m: topics_for([m], topics) for m in mappings}
        wanted = sorted({t for ts in per_table.values() for t in ts})
        lag = measure_lag(settings.kafka.bootstrap_servers, sink, wanted, schema)
        positions = applied_positions(sink, mappings)
        conflicts = conflict_counts(sink, schema)
    now = datetime.now(UTC)
    rows = [r for r in lag if r.group == snap.group] or [r for r in lag if r.group == "(none)"]
    for m in mappings:
        mine = [r for r in rows if r.topic in per_table[m]]
        name = f"{m.sink_schema}.{m.sink_table}"
        snap.tables.append(
            TableRow(
                name,
                per_table[m],
                sum(r.applied_offset for r in mine),
                sum(r.lag for r in mine),
                round(max((r.age_s(now) for r in mine), default=0.0), 1),
                conflicts.get(name, 0),
                sum(dlq.get(t, 0) for t in per_table[m]),
                positions.get(m.sink_table, "-"),
            )
        )


def assigned(member: dict[str, Any]) -> list[str]:
    """``topic[p]`` of a described group member (kafka-python decodes the assignment)."""
    raw = member.get("member_assignment") or {}
    pairs: Iterable[Any] = raw.get("assigned_partitions", []) if isinstance(raw, dict) else []
    out = []
    for item in pairs:
        topic, parts = (item.get("topic"), item.get("partitions", [])) if isinstance(item, dict) else item
        out += [f"{topic}[{p}]" for p in parts]
    return sorted(out)


def workers(settings: Settings, snap: Snapshot) -> None:
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, request_timeout_ms=int(_TIMEOUT_S * 1000)
    )
    try:
        desc = admin.describe_groups([snap.group]).get(snap.group, {})
    finally:
        admin.close()
    snap.group_state = str(desc.get("group_state") or "Dead")
    snap.workers = [
        # The member id (client id + a broker-made suffix): client ids are alike across workers.
        Worker(
            str(m.get("member_id") or m.get("client_id", "")),
            str(m.get("client_host", "")).lstrip("/"),
            assigned(m),
        )
        for m in desc.get("members", [])
    ]


def subscriptions(settings: Settings) -> list[str]:
    return list(settings.pipeline.topics or load_project(settings).subscriptions)


def project_subject(name: str, topics: set[str]) -> bool:
    """``<topic>-key`` / ``<topic>-value`` of a topic the project reads or publishes."""
    return name.removesuffix("-key").removesuffix("-value") in topics


def subjects(settings: Settings, snap: Snapshot) -> None:
    """The project's subjects (a shared registry holds every team's); the rest only counted."""
    project = load_project(settings)
    topics = set(subscriptions(settings)) | set(project.registry.domain_topics)
    with RegistryClient(settings.registry.url) as registry:
        names = sorted(registry.subjects())
        snap.other_subjects = sum(not project_subject(n, topics) for n in names)
        for name in names:
            if not project_subject(name, topics):
                continue
            latest = registry.latest(name)
            if latest is not None:
                snap.subjects.append(Subject(name, latest.version, latest.schema_id))


def latency_buckets(text: str) -> dict[str, dict[float, float]]:
    """``changefeed_end_to_end_latency_seconds`` buckets per table from one scrape."""
    out: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "changefeed_end_to_end_latency_seconds":
            continue
        for s in family.samples:
            if s.name.endswith("_bucket"):
                out.setdefault(s.labels["table"], {})[float(s.labels["le"])] = s.value
    return out


def scrape(urls: Iterable[str], snap: Snapshot) -> None:
    """Sum the workers' latency histograms and atomic sources' series; a worker that is not
    running is simply absent."""
    for url in urls:
        try:
            text = httpx.get(url, timeout=_TIMEOUT_S).text
        except httpx.HTTPError:
            continue
        readings(text, snap.atomic_readings)
        for table, buckets in latency_buckets(text).items():
            mine = snap.latency_buckets.setdefault(table, {})
            for le, n in buckets.items():
                mine[le] = mine.get(le, 0.0) + n


def look(
    settings: Settings, metrics_urls: Iterable[str] = (), schema: str | None = None, slow: bool = True
) -> Snapshot:
    """Everything once. ``slow=False`` skips the registry (it changes only with a deployment)."""
    started = time.monotonic()
    snap = Snapshot(time.time(), settings.worker.app_id)
    project = _part(snap, "project", lambda: load_project(settings), None)
    if project is not None:
        snap.project_connectors = list(project.connectors)
        snap.atomic_declared = {a.name: a.spec.max_transaction_wait_s for a in project.atomic}
    _part(snap, "capture", lambda: connectors_and_sources(settings, snap), None)
    _part(snap, "sink tables", lambda: tables(settings, snap, schema or settings.pipeline.sink_schema), None)
    _part(snap, "worker group", lambda: workers(settings, snap), None)
    if slow:
        _part(snap, "schema registry", lambda: subjects(settings, snap), None)
    scrape(metrics_urls, snap)
    snap.took_s = round(time.monotonic() - started, 2)
    return snap
