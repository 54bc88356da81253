"""`up`, `down` and `status` over the services: parallel start, health-gated, pid-tracked."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from streams.errors import StackError
from streams.settings import Settings
from streams.stack import process
from streams.stack.jvm import ensure_jvm_artifacts
from streams.stack.packages import ensure_packages
from streams.stack.paths import StackPaths
from streams.stack.services import Service, StackContext, build_services

Report = Callable[[str], None]
# How often readiness is probed while a service starts.
POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    port: int
    pid: int | None
    ready: bool
    uptime_s: float | None
    rss_mb: float | None

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "ready" if self.ready else "not ready"


def context_for(settings: Settings) -> StackContext:
    paths = StackPaths(settings.stack.state_dir.resolve(), settings.stack.cache_dir.resolve())
    return StackContext(settings=settings, paths=paths)


def up(settings: Settings, report: Report) -> list[ServiceStatus]:
    """Start every service not already running; return when all are ready or raise."""
    ctx = context_for(settings)
    bus = settings.bus
    ensure_packages(report, {p: p for p, on in [("nats-server", bus.nats.enabled),
                                                ("redis-server", bus.redis.enabled)] if on})  # fmt: skip
    _check_traversable(ctx.paths.state)
    services = build_services(settings)
    if all(_running(ctx, svc) and svc.ready(ctx) for svc in services):
        report("the stack is already running; nothing to do")
        return status(settings)
    report("resolving JVM artifacts (Maven; the first run downloads ~250 MB) ...")
    if ensure_jvm_artifacts(ctx.paths, ctx.paths.log_file("maven")):
        report("JVM artifacts resolved")
    ready = {svc.name: threading.Event() for svc in services}
    failed = threading.Event()
    deadline = time.monotonic() + settings.stack.start_timeout_s

    def start(svc: Service) -> None:
        try:
            for dep in svc.depends_on:
                while not ready[dep].wait(POLL_INTERVAL_S):
                    if failed.is_set() or time.monotonic() > deadline:
                        msg = f"{svc.name} not started: {dep} never became ready"
                        raise StackError(msg)
            _start_one(ctx, svc, deadline, report)
            ready[svc.name].set()
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        futures = [pool.submit(start, svc) for svc in services]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise StackError("\n\n".join(str(e) for e in errors))
    return status(settings)


def _check_traversable(state: Path) -> None:
    """As root the databases run as their own OS users, who must be able to reach the state dir."""
    if os.geteuid() != 0:
        return
    for parent in [*reversed(state.parents)]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            msg = (
                f"{parent} is not searchable by other users, so PostgreSQL/MariaDB (running as "
                f"their own users) cannot reach {state}: chmod o+x {parent} or choose another --state-dir"
            )
            raise StackError(msg)


def _running(ctx: StackContext, svc: Service) -> process.Running | None:
    return process.read_running(ctx.paths.pid_file(svc.name), ctx.marker)


def _start_one(ctx: StackContext, svc: Service, deadline: float, report: Report) -> None:
    started = time.monotonic()
    child: subprocess.Popen[bytes] | None = None
    if _running(ctx, svc) is None:
        svc.prepare(ctx)
        argv = svc.argv(ctx)
        env = svc.env(ctx) if svc.env else None
        pid_file, log_file = ctx.paths.pid_file(svc.name), ctx.paths.log_file(svc.name)
        child = process.spawn(argv, pid_file=pid_file, log_file=log_file, env=env, user=svc.run_as)
        report(f"{svc.name}: started, waiting until it is ready")
    while not svc.ready(ctx):
        # Our own child is watched through its Popen handle: /proc/<pid>/cmdline can read empty
        # while the java launcher execs, which made a pid-file check report live JVMs as dead.
        ended = child.poll() if child is not None else (None if _running(ctx, svc) else "unknown")
        if ended is not None:
            _fail(ctx, svc, f"exited during start-up (exit status {ended})")
        if time.monotonic() > deadline:
            _fail(ctx, svc, f"not ready within {ctx.settings.stack.start_timeout_s:.0f} s")
        time.sleep(POLL_INTERVAL_S)
    if svc.after_ready:
        svc.after_ready(ctx)
    report(f"{svc.name}: ready on 127.0.0.1:{svc.port} ({time.monotonic() - started:.1f} s)")


def _fail(ctx: StackContext, svc: Service, why: str) -> None:
    log = ctx.paths.log_file(svc.name)
    msg = (f"{svc.name} {why}.\n  command: {' '.join(svc.argv(ctx))}\n  log: {log}\n"
           f"--- last lines of {log.name} ---\n{process.log_tail(log)}")  # fmt: skip
    raise StackError(msg)


def down(settings: Settings, report: Report, *, purge: bool = False) -> None:
    """Stop what this tool started (by pid file), dependants first. Idempotent."""
    ctx = context_for(settings)
    services = build_services(settings, every=True)
    waves = [[s for s in services if s.depends_on], [s for s in services if not s.depends_on]]
    for wave in waves:
        with ThreadPoolExecutor(max_workers=len(wave)) as pool:
            list(pool.map(lambda svc: _stop_one(ctx, svc, report), wave))
    if purge and ctx.paths.state.exists():
        shutil.rmtree(ctx.paths.state)
        report(f"deleted {ctx.paths.state}")


def _stop_one(ctx: StackContext, svc: Service, report: Report) -> None:
    running = _running(ctx, svc)
    if running is None:
        ctx.paths.pid_file(svc.name).unlink(missing_ok=True)
        return
    graceful = process.stop(running, svc.stop_signal, ctx.settings.stack.stop_timeout_s,
                            ctx.marker, ctx.paths.pid_file(svc.name))  # fmt: skip
    ctx.paths.pid_file(svc.name).unlink(missing_ok=True)
    report(f"{svc.name}: stopped" + ("" if graceful else " (killed after the grace period)"))


def status(settings: Settings) -> list[ServiceStatus]:
    ctx = context_for(settings)
    rows: list[ServiceStatus] = []
    for svc in build_services(settings):
        running = _running(ctx, svc)
        rows.append(ServiceStatus(
            name=svc.name, port=svc.port,
            pid=running.pid if running else None,
            ready=bool(running) and svc.ready(ctx),
            uptime_s=time.time() - running.started_at if running else None,
            rss_mb=process.rss_mb(running.pid) if running else None,
        ))  # fmt: skip
    return rows
