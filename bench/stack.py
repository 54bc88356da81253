"""The benchmark's private stack: ports shifted (CHANGEFEED_BENCH_PORT_SHIFT, default 400), its own state
dir, Connect group and JVM cache. Its Connect worker lets connectors override their Kafka clients'
settings (``connector.client.config.override.policy=All``) so the JDBC sink can get its best consumer
configuration; the shared stack keeps ``None``.

The JVM cache is private too (a copy of the repo's Maven repository): re-resolving the manifest
deletes and rebuilds the cache's ``jvm`` dir, which must never happen under the shared stack's JVMs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from streams.settings import Settings, load_settings
from streams.stack import configs, supervisor
from streams.stack.paths import repo_root
from tests.stack_fixtures import env_for, shifted_settings

DEFAULT_SHIFT = 400
GROUP = "changefeed-bench"
SETUP = (("services", "migrate"), ("schemas", "register"), ("connectors", "apply"))


def port_shift(env: Mapping[str, str] = os.environ) -> int:
    """Ports of the private stack = the shared stack's + this; two benchmarks need two shifts."""
    raw = env.get("CHANGEFEED_BENCH_PORT_SHIFT", "").strip()
    if not raw:
        return DEFAULT_SHIFT
    shift = int(raw)
    if shift <= 0 or shift > 20_000:
        msg = f"CHANGEFEED_BENCH_PORT_SHIFT must be in 1..20000, not {raw!r}"
        raise ValueError(msg)
    return shift


def bench_settings(root: Path) -> Settings:
    s = shifted_settings(load_settings(), root / "state", port_shift(), GROUP)
    return s.model_copy(update={"stack": s.stack.model_copy(update={"cache_dir": root / "cache"})})


def bench_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        **env_for(settings),
        "CHANGEFEED_STACK__CACHE_DIR": str(settings.stack.cache_dir),
        "PYTHONPATH": str(repo_root()),
        "CHANGEFEED_WORKER__METRICS_PORT": "0",  # never bind the shared stack's scrape port
    }


def check_free_disk(root: Path, need_gib: float) -> None:
    """Refuse to start when the filesystem of ``root`` has less than ``need_gib`` free: a full run
    writes ~21 GiB (Kafka logs of the replays, two PostgreSQL and MariaDB), and a disk that fills
    mid-run stops Kafka and ends the benchmark with nothing to show."""
    where = root
    while not where.exists():  # the root is created by ``up``: measure the filesystem it will be on
        where = where.parent
    free_gib = shutil.disk_usage(where).free / 2**30
    if free_gib < need_gib:
        msg = (
            f"only {free_gib:.1f} GiB free on the filesystem of {root}; this benchmark needs "
            f"{need_gib:g} GiB. Free space (an earlier run's {root}, if it is left over, or "
            "`changefeed down --purge` of a stack you no longer need), or pass --root elsewhere."
        )
        raise SystemExit(msg)


def up(root: Path, say: supervisor.Report) -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the database OS users must reach the state dir
    cache = root / "cache"
    if not (cache / "m2").exists():  # Maven runs offline-ish from a copy of the shared repository
        shared = load_settings().stack.cache_dir / "m2"  # CHANGEFEED_STACK__CACHE_DIR, else the repo's
        for src in (shared, repo_root() / ".cache" / "m2"):
            if src.exists():
                shutil.copytree(src, cache / "m2", symlinks=True)
                break
        # else: a fresh clone that never ran the local stack; the resolver below downloads it all
    settings = bench_settings(root)
    with _client_overrides_allowed():
        supervisor.up(settings, say)
    env = bench_env(settings)
    for step in SETUP:
        say(f"$ changefeed {' '.join(step)}")
        done = subprocess.run(
            [sys.executable, "-m", "streams", *step], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            msg = f"changefeed {' '.join(step)} failed:\n{done.stdout}{done.stderr}"
            raise RuntimeError(msg)
    return settings


def down(settings: Settings, say: supervisor.Report) -> None:
    supervisor.down(settings, say, purge=True)


def component_pids(settings: Settings) -> dict[str, int]:
    return {s.name: s.pid for s in supervisor.status(settings) if s.pid is not None}


@contextlib.contextmanager
def _client_overrides_allowed() -> Iterator[None]:
    """While the private stack starts: its Connect worker properties allow client overrides."""
    original = configs.connect_worker_properties

    def allowing(*args: Any, **kwargs: Any) -> dict[str, str]:
        return {**original(*args, **kwargs), "connector.client.config.override.policy": "All"}

    configs.connect_worker_properties = allowing
    try:
        yield
    finally:
        configs.connect_worker_properties = original
