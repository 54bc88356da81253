"""Is capture moving? Connectors and tasks, the sources, the slot's WAL and the binlog position.

`changefeed lag` compares Kafka with the sink, so a stalled connector shows as "lag 0": nothing
new reaches Kafka. This module looks at the capture side instead, from the settings' logins:

- every connector on the Connect cluster and its tasks (a FAILED one with its first trace line);
- each source database answers a login (Connect keeps a task RUNNING while its source is down);
- each PostgreSQL replication slot: active or not, WAL retained behind it (``restart_lsn``) and
  not yet confirmed (``confirmed_flush_lsn``), from ``pg_replication_slots``;
- MariaDB's current binlog position vs the position each binlog connector stored in Connect.

:func:`problems` turns it into the lines that make ``status``/``lag`` exit non-zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pymysql

from streams.connect.client import ConnectClient
from streams.connect.heal import Cause, classify, first_line, summary
from streams.connect.models import FAILED, RUNNING, ConnectorStatus
from streams.errors import ConnectNotFoundError, TransientError
from streams.settings import DatabaseSettings, Settings

# An inactive slot retaining more than this is reported as a problem, not just shown: at the
# demo's write rate it is hours of changes, and it keeps growing until the disk fills.
INACTIVE_SLOT_LIMIT_BYTES = 64 * 1024 * 1024
# A binlog connector this far behind the server's position is reported (heartbeats every 10 s
# keep an idle connector's stored position within a few KiB of the server's).
BINLOG_BEHIND_LIMIT_BYTES = 64 * 1024 * 1024
_PROBE_TIMEOUT_S = 3
_BINLOG_CLASSES = (
    "io.debezium.connector.mariadb.MariaDbConnector",
    "io.debezium.connector.mysql.MySqlConnector",
)


@dataclass(frozen=True)
class ConnectorHealth:
    name: str
    state: str
    tasks: tuple[tuple[int, str], ...]
    failures: tuple[str, ...] = ()  # "task 0: <first trace line> (transient|permanent|unknown)"

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    @property
    def stalled(self) -> bool:
        """FAILED, or held (paused/stopped/unassigned): nothing is captured."""
        return self.failed or self.state != RUNNING or any(s != RUNNING for _, s in self.tasks)

    @classmethod
    def of(cls, status: ConnectorStatus) -> ConnectorHealth:
        failures = []
        if status.state == FAILED:
            failures.append(f"connector: {summary(status.trace)} ({classify(status.trace).value})")
        failures.extend(
            f"task {t.id}: {summary(t.trace)} ({classify(t.trace).value})"
            for t in status.tasks
            if t.state == FAILED
        )
        return cls(status.name, status.state, tuple((t.id, t.state) for t in status.tasks), tuple(failures))


@dataclass(frozen=True)
class SourceProbe:
    name: str  # settings section: source_postgres / source_mariadb
    address: str
    error: str = ""  # empty: the admin login answered

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class SlotHealth:
    slot: str
    active: bool
    wal_status: str
    retained_bytes: int  # WAL the server keeps for this slot (current LSN - restart_lsn)
    unconfirmed_bytes: int  # not yet confirmed by the consumer (current LSN - confirmed_flush_lsn)

    @property
    def problem(self) -> str:
        if self.wal_status == "lost":
            return f"slot {self.slot}: WAL it needs was removed (wal_status lost): re-snapshot"
        if not self.active and self.retained_bytes > INACTIVE_SLOT_LIMIT_BYTES:
            return f"slot {self.slot}: inactive and retaining {human_bytes(self.retained_bytes)} of WAL"
        return ""


@dataclass(frozen=True)
class BinlogHealth:
    connector: str
    server_file: str
    server_pos: int
    connector_file: str
    connector_pos: int
    behind_bytes: int | None  # None: the connector's file is no longer on the server

    @property
    def problem(self) -> str:
        if self.behind_bytes is None:
            return (
                f"{self.connector}: its binlog {self.connector_file} is no longer on the server"
                " (purged): re-snapshot"
            )
        if self.behind_bytes > BINLOG_BEHIND_LIMIT_BYTES:
            return f"{self.connector}: {human_bytes(self.behind_bytes)} of binlog behind the server"
        return ""


@dataclass
class CaptureHealth:
    connect_error: str = ""
    connectors: list[ConnectorHealth] = field(default_factory=list)
    sources: list[SourceProbe] = field(default_factory=list)
    slots: list[SlotHealth] = field(default_factory=list)
    binlogs: list[BinlogHealth] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be measured, and why

    def problems(self) -> list[str]:
        """One line per thing that stops or endangers capture; empty when capture is healthy."""
        out = [f"Kafka Connect: {self.connect_error}"] if self.connect_error else []
        out += [f"source {s.name} ({s.address}) unreachable: {s.error}" for s in self.sources if not s.ok]
        for c in self.connectors:
            out += [f"connector {c.name} FAILED — {f}" for f in c.failures]
        out += [s.problem for s in self.slots if s.problem]
        out += [b.problem for b in self.binlogs if b.problem]
        return out

    def warnings(self) -> list[str]:
        """Held on purpose (paused/stopped) or not yet assigned: capture waits, nothing failed."""
        return [
            f"connector {c.name} is {c.state} (tasks: {', '.join(f'{i}={s}' for i, s in c.tasks) or 'none'})"
            for c in self.connectors
            if c.stalled and not c.failed
        ]


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


@contextlib.contextmanager
def _postgres(db: DatabaseSettings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
        dbname=db.database, application_name="changefeed-health", connect_timeout=_PROBE_TIMEOUT_S,
        autocommit=True,
    ) as conn:  # fmt: skip
        yield conn


@contextlib.contextmanager
def _mariadb(db: DatabaseSettings) -> Iterator[pymysql.Connection[Any]]:
    conn = pymysql.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
        database=db.database, connect_timeout=_PROBE_TIMEOUT_S, read_timeout=10,
    )  # fmt: skip
    try:
        yield conn
    finally:
        conn.close()


def slot_health(db: DatabaseSettings) -> list[SlotHealth]:
    """Every logical slot on the source PostgreSQL, with the WAL it holds back."""
    with _postgres(db) as conn:
        rows = conn.execute(
            "SELECT slot_name, active, coalesce(wal_status, ''),"
            " coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,"
            " coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint"
            " FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name"
        ).fetchall()
    return [SlotHealth(str(n), bool(a), str(w), int(r), int(u)) for n, a, w, r, u in rows]


def binlog_behind(
    logs: list[tuple[str, int]], server: tuple[str, int], connector: tuple[str, int]
) -> int | None:
    """Bytes between the connector's position and the server's, over ``SHOW BINARY LOGS``."""
    sizes = dict(logs)
    (s_file, s_pos), (c_file, c_pos) = server, connector
    if c_file not in sizes:
        return None
    if c_file == s_file:
        return max(0, s_pos - c_pos)
    names = [name for name, _ in logs]
    between = names[names.index(c_file) + 1 : names.index(s_file)] if s_file in names else []
    return max(0, sizes[c_file] - c_pos) + sum(sizes[n] for n in between) + s_pos


def _binlog_offsets(
    client: ConnectClient, statuses: list[ConnectorStatus], db: DatabaseSettings
) -> dict[str, tuple[str, int]]:
    """Stored binlog position of each binlog connector that reads ``db`` (not another server)."""
    out: dict[str, tuple[str, int]] = {}
    for status in statuses:
        config = client.config(status.name) or {}
        if config.get("connector.class") not in _BINLOG_CLASSES:
            continue
        if config.get("database.port") != str(db.port):
            continue  # reads another server (a private test stack): not comparable
        for offset in client.offsets(status.name):
            if offset.offset and "file" in offset.offset:
                out[status.name] = (str(offset.offset["file"]), int(offset.offset.get("pos", 0)))
    return out


def binlog_health(db: DatabaseSettings, offsets: dict[str, tuple[str, int]]) -> list[BinlogHealth]:
    with _mariadb(db) as conn, conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
        if row is None:
            return []
        server = (str(row[0]), int(row[1]))
        cur.execute("SHOW BINARY LOGS")
        logs = [(str(r[0]), int(r[1])) for r in cur.fetchall()]
    return [
        BinlogHealth(name, *server, *pos, binlog_behind(logs, server, pos))
        for name, pos in sorted(offsets.items())
    ]


def _probe(name: str, db: DatabaseSettings, connect: Any) -> SourceProbe:
    address = f"{db.host}:{db.port}/{db.database}"
    try:
        with connect(db):
            return SourceProbe(name, address)
    except (psycopg.Error, pymysql.MySQLError, OSError) as exc:
        return SourceProbe(name, address, first_line(str(exc)) or exc.__class__.__name__)


def gather(settings: Settings, client: ConnectClient | None = None) -> CaptureHealth:
    """Look at everything above; whatever cannot be reached becomes a problem, never an exception."""
    health = CaptureHealth()
    health.sources = [
        _probe("source_postgres", settings.source_postgres, _postgres),
        _probe("source_mariadb", settings.source_mariadb, _mariadb),
    ]
    statuses: list[ConnectorStatus] = []
    own = client is None
    connect = client or ConnectClient(settings.connect.url)
    try:
        for name in connect.names():
            with contextlib.suppress(ConnectNotFoundError):  # deleted since the listing
                statuses.append(connect.status(name))
        health.connectors = [ConnectorHealth.of(s) for s in statuses]
        offsets = _binlog_offsets(connect, statuses, settings.source_mariadb)
    except TransientError as exc:
        health.connect_error = str(exc)
        offsets = {}
    finally:
        if own:
            connect.close()
    up = {s.name for s in health.sources if s.ok}
    if "source_postgres" in up:
        try:
            health.slots = slot_health(settings.source_postgres)
        except psycopg.Error as exc:
            health.notes.append(f"replication slots not read: {first_line(str(exc))}")
    if "source_mariadb" in up and offsets:
        try:
            health.binlogs = binlog_health(settings.source_mariadb, offsets)
        except pymysql.MySQLError as exc:
            health.notes.append(f"binlog position not read: {first_line(str(exc))}")
    return health


def transient_failures(health: CaptureHealth) -> list[str]:
    """Failures the supervisor (`changefeed connectors heal`) would restart."""
    return [f for c in health.connectors for f in c.failures if f.endswith(f"({Cause.TRANSIENT.value})")]
