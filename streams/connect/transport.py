"""HTTP plumbing for the Connect client: timeouts, 409 retry with backoff, error bodies → errors.

Kafka Connect answers 409 while a rebalance is in progress; the request is fine and will succeed
once the group settles, so it is retried with exponential backoff until a deadline. Just after a
config change a worker can also answer 500 "Request cannot be completed because a rebalance is
expected" (its RebalanceNeededException is not a REST exception, so it maps to 500): retried
the same way. Everything else that is not 2xx becomes a typed error carrying Connect's message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from streams.errors import ConnectNotFoundError, ConnectRequestError, ConnectUnavailableError

log = logging.getLogger(__name__)

# Connect's own request timeout is 90 s (validate may connect to the database); stay just above
# it for reads so Connect's error is what the user sees, and connect fast to fail fast when down.
DEFAULT_TIMEOUT = httpx.Timeout(95.0, connect=3.0)
# A rebalance on a one-worker cluster settles in seconds; scheduled.rebalance.max.delay.ms is 10 s.
DEFAULT_REBALANCE_DEADLINE_S = 60.0
_BACKOFF_START_S = 0.25
_BACKOFF_MAX_S = 4.0
_REBALANCE_EXPECTED = "rebalance is expected"


def is_rebalancing(response: httpx.Response) -> bool:
    """Connect's answers that mean "ask again once the group has settled"."""
    if response.status_code == httpx.codes.CONFLICT:
        return True
    return (
        response.status_code == httpx.codes.INTERNAL_SERVER_ERROR
        and _REBALANCE_EXPECTED in error_message(response)
    )


def error_message(response: httpx.Response) -> str:
    """Connect's error body is `{"error_code": n, "message": "..."}`; fall back to raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return response.text.strip()


class Transport:
    """Sends one request, retrying only what Connect marks as transient (a rebalance)."""

    def __init__(
        self,
        http: httpx.Client,
        rebalance_deadline_s: float = DEFAULT_REBALANCE_DEADLINE_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._deadline_s = rebalance_deadline_s
        self._sleep = sleep
        self._clock = clock

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send; retry rebalance answers with backoff until the deadline; raise typed errors for the rest."""
        deadline = self._clock() + self._deadline_s
        delay = _BACKOFF_START_S
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                msg = f"Kafka Connect at {self.base_url} did not answer ({exc.__class__.__name__}: {exc})"
                raise ConnectUnavailableError(msg) from exc
            if not is_rebalancing(response):
                return self._checked(response)
            if self._clock() + delay > deadline:
                msg = (
                    f"Kafka Connect at {self.base_url} kept answering {response.status_code}"
                    f" (rebalance in progress) for {self._deadline_s:.0f} s: {error_message(response)}"
                )
                raise ConnectUnavailableError(msg)
            log.info("Connect rebalancing (%s %s), retrying in %.2f s", method, path, delay)
            self._sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX_S)

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        status = response.status_code
        message = error_message(response)
        if status == httpx.codes.NOT_FOUND:
            raise ConnectNotFoundError(status, message)
        raise ConnectRequestError(status, message)
