"""The gRPC service (``grpc.aio``): ``WaitApplied`` and ``ReadAfter`` over one ``WaitHub``.

Every call has a deadline: the client's, or ``max_wait`` when it sent none; a wait ends with
``TIMEOUT`` shortly before the deadline so the answer still arrives. A malformed token or read is
``INVALID_ARGUMENT`` with the reason; a token of another source or server is ``UNKNOWN_SOURCE``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import grpc
import psycopg

from streams.consistency.token import TokenError, parse_token
from streams.consistency.wait import Status, WaitHub, WaitResult
from streams.serve.protos import messages, services
from streams.serve.reads import Reader, ReadError, SinkTable

log = logging.getLogger(__name__)
DEFAULT_ADDRESS = "127.0.0.1:50151"
# Answer this long before the deadline (10 % of it, 0.1–1 s) so the reply still arrives on a busy host.
_MARGIN_MIN_S, _MARGIN_MAX_S = 0.1, 1.0
_STATUS = {
    Status.APPLIED: "APPLIED",
    Status.TIMEOUT: "TIMEOUT",
    Status.UNKNOWN_SOURCE: "UNKNOWN_SOURCE",
}


def wait_budget(requested: float, remaining: float | None, max_wait: float) -> float:
    """Seconds a wait may take: the request's timeout, capped by the deadline and ``max_wait``."""
    budget = max_wait if requested <= 0 else min(requested, max_wait)
    if remaining is not None:
        budget = min(budget, remaining - min(_MARGIN_MAX_S, max(_MARGIN_MIN_S, 0.1 * remaining)))
    return max(0.0, budget)


class ConsistencyService(services.ConsistencyServicer):  # type: ignore[misc]
    def __init__(self, hub: WaitHub, reader: Reader, max_wait: float = 30.0) -> None:
        self.hub, self.reader, self.max_wait = hub, reader, max_wait

    async def _wait(self, token_text: str, timeout_s: float, context: Any) -> WaitResult:
        try:
            token = parse_token(token_text)
        except TokenError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise  # abort raises; this line keeps type checkers honest
        budget = wait_budget(timeout_s, context.time_remaining(), self.max_wait)
        return await self.hub.wait(token, budget)

    async def WaitApplied(self, request: Any, context: Any) -> Any:
        result = await self._wait(request.token, request.timeout_s, context)
        return messages.WaitReply(
            status=_STATUS[result.status], applied_position=result.applied, message=result.message
        )

    async def ReadAfter(self, request: Any, context: Any) -> Any:
        try:
            table = self.reader.table(request.table)
        except ReadError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise
        result = await self._wait(request.token, request.timeout_s, context)
        rows: list[str] = []
        if result.status is Status.APPLIED:
            source = self.hub.sources.get(parse_token(request.token).source)
            if source is not None and table.topic not in source.topics:
                msg = f"{request.table} is not fed by source {source.name}"
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, msg)
            try:
                rows = await self.reader.rows(table, list(request.key))
            except ReadError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return messages.ReadReply(
            status=_STATUS[result.status],
            applied_position=result.applied,
            rows_json=rows,
            message=result.message,
        )


async def start_server(
    hub: WaitHub, tables: Mapping[str, SinkTable], read_conninfo: str, address: str = DEFAULT_ADDRESS
) -> tuple[Any, int]:
    """Start the hub and the server; returns (server, bound port)."""
    await hub.start()
    conn = await psycopg.AsyncConnection.connect(read_conninfo, autocommit=True)
    server = grpc.aio.server()
    services.add_ConsistencyServicer_to_server(ConsistencyService(hub, Reader(conn, tables)), server)
    port = server.add_insecure_port(address)
    if port == 0:
        msg = f"cannot listen on {address}"
        raise OSError(msg)
    await server.start()
    return server, port
