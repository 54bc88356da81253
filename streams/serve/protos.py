"""Message and service modules generated from ``consistency.proto`` at import time.

``grpc.protos_and_services`` compiles the committed ``.proto`` with grpcio-tools (a declared
dependency) when first imported: no generated file is committed or goes stale, and no build hook
is needed for an editable install or a wheel (the ``.proto`` ships as package data). The cost is
~50 ms at the first import, once per process; only the commands that serve or call the service
import this module.

grpcio-tools looks the ``.proto`` up on ``sys.path``; an installed package may not be on it as a
plain directory (editable installs use an import hook), so the folder holding ``streams/`` is put
first for the duration of the compile.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import grpc

PROTO = "streams/serve/consistency.proto"
SERVICE = "changefeed.consistency.v1.Consistency"
_ROOT = str(Path(__file__).resolve().parents[2])


def _compile() -> tuple[Any, Any]:
    sys.path.insert(0, _ROOT)
    try:
        return grpc.protos_and_services(PROTO)  # type: ignore[no-any-return]
    finally:
        sys.path.remove(_ROOT)


messages, services = _compile()
