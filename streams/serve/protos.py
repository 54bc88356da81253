"""Message and service modules generated from ``consistency.proto`` at import time.

``grpc.protos_and_services`` compiles the committed ``.proto`` with grpcio-tools (a declared
dependency) when first imported: no generated file is committed or goes stale, and no build hook
is needed for an editable install or a wheel (the ``.proto`` ships as package data). The cost is
~50 ms at the first import, once per process.
"""

from __future__ import annotations

from typing import Any

import grpc

PROTO = "streams/serve/consistency.proto"
SERVICE = "changefeed.consistency.v1.Consistency"

messages: Any
services: Any
messages, services = grpc.protos_and_services(PROTO)
