"""A Python client of the read-your-writes service, with deadlines and retries built in.

Retries come from the gRPC service config, not from a loop here: ``retryPolicy`` retries a call
that failed with ``UNAVAILABLE`` (the server restarting, a connection refused) up to 5 attempts
with exponential backoff, within the call's deadline. Both methods are idempotent reads, so a
retried call cannot do anything twice. Every call carries a deadline (``timeout`` + a margin).

Write → token → read::

    with psycopg.connect(...) as conn:
        conn.execute("UPDATE customers SET email = %s WHERE id = %s", [email, 42])
        conn.commit()
        token = psycopg_token(conn, "customers")
    async with ConsistencyClient("127.0.0.1:50151") as client:
        reply = await client.read_after(token, "customer_directory", [42], timeout=5)
        # reply.status == APPLIED → reply.rows_json holds the row with the new email
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc

from streams.consistency.token import Token
from streams.serve.protos import SERVICE, messages, services
from streams.serve.server import DEFAULT_ADDRESS

# The call's deadline is the wait's timeout plus this: room for the answer and one retry.
DEADLINE_MARGIN_S = 2.0

SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": SERVICE}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}


def channel_options(retries: bool = True) -> list[tuple[str, Any]]:
    return [
        ("grpc.enable_retries", 1 if retries else 0),
        ("grpc.service_config", json.dumps(SERVICE_CONFIG if retries else {})),
        # Reconnect quickly after a restart, so retries inside the deadline can reach it.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]


class ConsistencyClient:
    def __init__(self, address: str = DEFAULT_ADDRESS, *, retries: bool = True) -> None:
        self.channel = grpc.aio.insecure_channel(address, options=channel_options(retries))
        self.stub = services.ConsistencyStub(self.channel)

    async def __aenter__(self) -> ConsistencyClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def wait_applied(self, token: Token | str, timeout: float, deadline: float | None = None) -> Any:
        request = messages.WaitRequest(token=str(token), timeout_s=timeout)
        return await self.stub.WaitApplied(request, timeout=deadline or timeout + DEADLINE_MARGIN_S)

    async def read_after(
        self,
        token: Token | str,
        table: str,
        key: Sequence[Any],
        timeout: float,
        deadline: float | None = None,
    ) -> Any:
        request = messages.ReadRequest(
            token=str(token), timeout_s=timeout, table=table, key=[str(k) for k in key]
        )
        return await self.stub.ReadAfter(request, timeout=deadline or timeout + DEADLINE_MARGIN_S)


def status_name(reply: Any) -> str:
    return str(messages.Status.Name(reply.status))
