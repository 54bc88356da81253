"""The Debian packages the local stack runs, installed when missing (as root) or named."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from streams.errors import StackError

# executable (or glob under /) → Debian package that provides it
REQUIRED: dict[str, str] = {
    "usr/lib/postgresql/*/bin/postgres": "postgresql",
    "usr/sbin/mariadbd": "mariadb-server",
    "usr/bin/mariadb-install-db": "mariadb-server",
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
}


def missing_packages(extra: Mapping[str, str] | None = None) -> list[str]:
    missing: list[str] = []
    for probe, package in {**REQUIRED, **(extra or {})}.items():
        found = any(Path("/").glob(probe)) if "/" in probe else shutil.which(probe) is not None
        if not found and package not in missing:
            missing.append(package)
    return missing


def ensure_packages(report: Callable[[str], None], extra: Mapping[str, str] | None = None) -> None:
    missing = missing_packages(extra)
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        msg = f"missing Debian packages; install them with:\n  sudo {' '.join(command)}"
        raise StackError(msg)
    report(f"installing Debian packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], command):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            msg = f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            raise StackError(msg)
