"""NATS or Redis down mid fan-out: the bridge backs off, acks nothing it has not stored, loses nothing."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from streams.settings import Settings
from streams.stack.bus import nats_ready
from tests.integration.bus.helpers import EMAIL_CHANGED, bus_env, email_changed, produce
from tests.integration.bus.nats_reader import read_all, stream_count
from tests.integration.streams.helpers import Worker, committed, end_offsets
from tests.polling import poll

pytestmark = pytest.mark.integration
EVENTS = 3000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateNats:
    """A nats-server of this test's own (ports, store dir), so stopping it disturbs no one."""

    def __init__(self, store: Path) -> None:
        self.port, self.monitor = _free_port(), _free_port()
        self.store, self.proc = store, None

    def start(self, settings: Settings) -> None:
        self.proc = subprocess.Popen(
            ["nats-server", "--addr", "127.0.0.1", "--port", str(self.port), "--http_port", str(self.monitor),
             "--jetstream", "--store_dir", str(self.store)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        n = settings.bus.nats.model_copy(update={"port": self.port, "monitor_port": self.monitor})
        poll(lambda: nats_ready(n), 30, "the private nats-server")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: JetStream syncs its store
            self.proc.wait(30)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


@pytest.fixture
def private_nats(bus_settings: Settings, tmp_path: Path) -> Iterator[PrivateNats]:
    n = PrivateNats(tmp_path / "nats")
    n.start(bus_settings)
    yield n
    n.stop()


def test_nats_down_backs_off_acks_nothing_and_loses_nothing(
    bus_settings: Settings,
    topics: tuple[str, str],
    schema: str,
    workers: Callable[..., Worker],
    private_nats: PrivateNats,
) -> None:
    domain, change = topics
    tag = uuid.uuid4().hex[:8]
    stream, prefix, app_id = f"IT_{tag}", f"it{tag}", f"it-bus-down-{tag}"
    events = [email_changed(domain, i) for i in range(EVENTS)]
    produce(bus_settings, events)
    env = bus_env(
        change, domain,
        nats__enabled="true", nats__port=str(private_nats.port), nats__stream=stream,
        nats__subject_prefix=prefix, commit_interval_s="0.5",
    )  # fmt: skip
    w = workers(app_id, schema, env=env)
    url = private_nats.url
    poll(lambda: stream_count(url, stream) >= EVENTS // 5, 120, "a fifth of the events in JetStream", 0.1)
    private_nats.stop()
    poll(lambda: "bus-nats publish failed, retrying" in w.text(), 60, "the bridge backing off")
    group = f"{app_id}-bus"
    # Past a commit interval with NATS down: whatever the group committed by now is final until
    # NATS returns, and it must not pass what JetStream had stored when it stopped.
    poll(lambda: w.text().count("bus-nats publish failed, retrying") >= 3, 60, "three retries")
    during = sum(committed(bus_settings, group, domain).values())
    assert w.proc.poll() is None
    restarted_at = datetime.now(UTC)  # every message stored before this was stored before the outage
    private_nats.start(bus_settings)
    ends = end_offsets(bus_settings, domain)
    poll(lambda: committed(bus_settings, group, domain) == ends, 180, "the bus group committed the topic")
    assert w.stop() == 0
    msgs = read_all(url, stream, f"{prefix}.>", EVENTS)
    assert len(msgs) == EVENTS
    assert {m.headers["Nats-Msg-Id"] for m in msgs} == {e.id for e in events}
    stored = sum(1 for m in msgs if m.metadata.timestamp < restarted_at)
    assert 0 < during <= stored < EVENTS, f"committed {during}, stored before the outage {stored}"
    stats = re.search(r"bus stopped: (.*)", w.text())
    assert stats is not None
    print(f"nats outage: {stored} stored before it, {during} offsets committed during it; {stats.group(1)}")


def test_a_worker_stopped_while_retrying_exits_cleanly_and_its_successor_loses_nothing(
    bus_settings: Settings,
    topics: tuple[str, str],
    schema: str,
    workers: Callable[..., Worker],
    private_nats: PrivateNats,
) -> None:
    domain, change = topics
    tag = uuid.uuid4().hex[:8]
    stream, prefix, app_id = f"IT_{tag}", f"it{tag}", f"it-bus-stop-{tag}"
    events = [email_changed(domain, i) for i in range(1000)]
    produce(bus_settings, events)
    env = bus_env(
        change, domain,
        nats__enabled="true", nats__port=str(private_nats.port), nats__stream=stream,
        nats__subject_prefix=prefix, commit_interval_s="0.5",
    )  # fmt: skip
    first = workers(app_id, schema, env=env)
    url = private_nats.url
    poll(lambda: stream_count(url, stream) >= 100, 120, "the first events in JetStream", 0.1)
    private_nats.stop()
    poll(lambda: "bus-nats publish failed, retrying" in first.text(), 60, "the bridge backing off")
    # SIGINT mid-retry: the agent is cancelled with its event unacked, and the worker exits 0.
    assert first.stop() == 0
    assert "bus stopped:" in first.text()
    private_nats.start(bus_settings)
    second = workers(app_id, schema, env=env)
    ends = end_offsets(bus_settings, domain)
    poll(lambda: committed(bus_settings, f"{app_id}-bus", domain) == ends, 180, "the successor committed")
    assert second.stop() == 0
    msgs = read_all(url, stream, f"{prefix}.>", len(events))
    assert len(msgs) == len(events)
    assert {m.headers["Nats-Msg-Id"] for m in msgs} == {e.id for e in events}


def test_redis_down_backs_off_acks_nothing_and_loses_nothing(
    bus_settings: Settings,
    topics: tuple[str, str],
    schema: str,
    workers: Callable[..., Worker],
    tmp_path: Path,
) -> None:
    domain, change = topics
    port, tag = _free_port(), uuid.uuid4().hex[:8]
    prefix, app_id = f"it{tag}:", f"it-bus-rdown-{tag}"
    key = f"{prefix}{EMAIL_CHANGED}"
    (tmp_path / "redis").mkdir()
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp_path / "redis"),
            "--appendonly", "yes", "--save", ""]  # fmt: skip
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = redis.Redis(port=port)
    try:
        poll(lambda: _pong(r), 30, "the private redis-server")
        events = [email_changed(domain, i) for i in range(EVENTS)]
        produce(bus_settings, events)
        env = bus_env(
            change, domain,
            redis__enabled="true", redis__port=str(port), redis__stream_prefix=prefix,
            commit_interval_s="0.5",
        )  # fmt: skip
        w = workers(app_id, schema, env=env)
        poll(lambda: _xlen(r, key) >= EVENTS // 5, 120, "a fifth of the events in Redis", 0.1)
        server.send_signal(signal.SIGTERM)  # a clean shutdown writes the append-only file
        server.wait(30)
        poll(lambda: w.text().count("bus-redis publish failed, retrying") >= 3, 60, "the bridge backing off")
        group = f"{app_id}-bus"
        during = sum(committed(bus_settings, group, domain).values())
        restarted_ms = int(datetime.now(UTC).timestamp() * 1000)
        server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        poll(lambda: _pong(r), 30, "redis-server back")
        ends = end_offsets(bus_settings, domain)
        poll(lambda: committed(bus_settings, group, domain) == ends, 180, "the bus group committed the topic")
        assert w.stop() == 0
        entries = r.xrange(key)
        assert len(entries) == EVENTS
        assert {v[b"id"].decode() for _, v in entries} == {e.id for e in events}
        stored = sum(1 for entry_id, _ in entries if int(entry_id.split(b"-")[0]) < restarted_ms)
        assert 0 < during <= stored < EVENTS, f"committed {during}, stored before the outage {stored}"
        print(f"redis outage: {stored} stored before it, {during} offsets committed during it")
    finally:
        r.close()
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def _pong(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except redis.RedisError:
        return False


def _xlen(r: redis.Redis, key: str) -> int:
    try:
        return int(r.xlen(key))
    except redis.RedisError:
        return 0
