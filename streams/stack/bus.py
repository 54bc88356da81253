"""The event bus's services of the local stack: nats-server (JetStream) and redis-server.

Both come from Debian packages and run only when their bridge is enabled in the settings
(``[bus.nats] enabled``, ``[bus.redis] enabled``): loopback only, data under the state
directory, and never the packages' system services (the stack starts its own processes).
"""

from __future__ import annotations

import shutil
import socket

from streams.errors import StackError
from streams.settings import NatsBridgeSettings, RedisBridgeSettings, Settings
from streams.stack import health
from streams.stack.services import Service, StackContext


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(f"/usr/sbin/{name}") or shutil.which(f"/usr/bin/{name}")
    if found is None:
        msg = f"{name} not found: apt-get install {package}"
        raise StackError(msg)
    return found


# --- NATS ------------------------------------------------------------------------------------


def _nats_prepare(ctx: StackContext) -> None:
    ctx.paths.data("nats").mkdir(parents=True, exist_ok=True)


def _nats_argv(ctx: StackContext) -> list[str]:
    n = ctx.settings.bus.nats
    # The store dir names the state dir, which is how pid checks recognize the process as ours.
    return [_binary("nats-server", "nats-server"), "--addr", n.host, "--port", str(n.port),
            "--http_port", str(n.monitor_port), "--jetstream", "--store_dir", str(ctx.paths.data("nats")),
            "--server_name", "changefeed-nats"]  # fmt: skip


def nats_ready(n: NatsBridgeSettings) -> bool:
    """The monitor's health check passes, JetStream included (not just an open port)."""
    return health.http_ok(f"http://{n.host}:{n.monitor_port}/healthz?js-enabled-only=true")


# --- Redis -----------------------------------------------------------------------------------


def redis_conf(ctx: StackContext) -> str:
    r = ctx.settings.bus.redis
    return "\n".join([
        f"bind {r.host}", f"port {r.port}", "protected-mode yes", "daemonize no",
        f"dir {ctx.paths.data('redis')}",
        # Durable enough for a bus: the append-only file, fsynced every second.
        "appendonly yes", "appendfsync everysec", 'save ""',
        # Redis rewrites its process title by default; the original command line (with this
        # file's path under the state dir) is how the pid checks recognize it as ours.
        "set-proc-title no",
        "",
    ])  # fmt: skip


def _redis_prepare(ctx: StackContext) -> None:
    ctx.paths.data("redis").mkdir(parents=True, exist_ok=True)
    conf = ctx.paths.conf("redis")
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "redis.conf").write_text(redis_conf(ctx))


def _redis_argv(ctx: StackContext) -> list[str]:
    return [_binary("redis-server", "redis-server"), str(ctx.paths.conf("redis") / "redis.conf")]


def redis_ready(r: RedisBridgeSettings) -> bool:
    """The server answers PING with PONG (it refuses commands while loading its data)."""
    try:
        with socket.create_connection((r.host, r.port), timeout=health.PROBE_TIMEOUT_S) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def bus_services(settings: Settings, *, every: bool = False) -> list[Service]:
    """The enabled bridges' servers (none by default); ``every``: both, enabled or not."""
    services: list[Service] = []
    n, r = settings.bus.nats, settings.bus.redis
    if n.enabled or every:
        services.append(Service("nats", n.port, _nats_prepare, _nats_argv,
                                lambda c: nats_ready(c.settings.bus.nats)))  # fmt: skip
    if r.enabled or every:
        services.append(Service("redis", r.port, _redis_prepare, _redis_argv,
                                lambda c: redis_ready(c.settings.bus.redis)))  # fmt: skip
    return services
