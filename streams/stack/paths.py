"""Where the local stack keeps everything: one state directory, one cache directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streams


def repo_root() -> Path:
    """The checkout this package runs from (the local stack needs its `compose/` manifest)."""
    return Path(streams.__file__).resolve().parent.parent


@dataclass(frozen=True)
class StackPaths:
    """Derived paths under the state directory (data, logs, pid files, secrets) and the caches.

    The caches (Maven repository, resolved jars) live outside the state directory so that
    `changefeed down --purge` never forces a second download.
    """

    state: Path
    cache: Path

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def secrets(self) -> Path:
        return self.state / "secrets"

    @property
    def m2(self) -> Path:
        return self.cache / "m2"

    @property
    def jvm(self) -> Path:
        return self.cache / "jvm"

    @property
    def kafka_libs(self) -> Path:
        return self.jvm / "kafka"

    @property
    def plugins(self) -> Path:
        return self.jvm / "plugins"

    def data(self, service: str) -> Path:
        return self.state / "data" / service

    def conf(self, service: str) -> Path:
        return self.state / "conf" / service

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def socket_dir(self, service: str) -> Path:
        return self.run / service
