"""The benchmark's private stack: ports shifted by 400, its own state dir, Connect group and JVM cache.

The JVM cache is private too (a copy of the repo's Maven repository): re-resolving the manifest
deletes and rebuilds the cache's ``jvm`` dir, which must never happen under the shared stack's JVMs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from streams.settings import Settings, load_settings
from streams.stack import supervisor
from streams.stack.paths import repo_root
from tests.stack_fixtures import env_for, shifted_settings

SHIFT = 400
GROUP = "changefeed-bench"
SETUP = (("services", "migrate"), ("schemas", "register"), ("connectors", "apply"))


def bench_settings(root: Path) -> Settings:
    s = shifted_settings(load_settings(), root / "state", SHIFT, GROUP)
    return s.model_copy(update={"stack": s.stack.model_copy(update={"cache_dir": root / "cache"})})


def bench_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        **env_for(settings),
        "CHANGEFEED_STACK__CACHE_DIR": str(settings.stack.cache_dir),
        "PYTHONPATH": str(repo_root()),
        "CHANGEFEED_WORKER__METRICS_PORT": "0",  # never bind the shared stack's scrape port
    }


def up(root: Path, say: supervisor.Report) -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the database OS users must reach the state dir
    cache = root / "cache"
    if not (cache / "m2").exists():  # Maven runs offline-ish from a copy of the shared repository
        shutil.copytree(repo_root() / ".cache" / "m2", cache / "m2", symlinks=True)
    settings = bench_settings(root)
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
