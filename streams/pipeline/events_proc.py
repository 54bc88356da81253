"""Domain events encoded and produced by a child process while the worker handles the batch.

Encoding a domain event (fastavro, CloudEvents headers, size check) and producing it cost the
worker about as much CPU as mirroring the change itself, and a worker is one Python process bound
to one core. ``ProcessEvents`` moves that work to a child process (``[worker] publisher =
"process"``): the worker stages each record's events as plain tuples, sends them to the child in
chunks while it goes on with the batch, and at the end of the batch asks for the verdict.

The protocol on a ``multiprocessing`` pipe, every message tagged with an attempt number:
- ``("events", attempt, [(origin, [event fields, ...]), ...])``: encode and produce these;
- ``("flush", attempt)``: wait for every ack, then answer ``("done", attempt, refused, problem)``:
  the records whose events could not be encoded (poison, with their exception), and why the
  attempt failed as a whole if it did (events not acked, registry away: ``TransientError`` in
  the worker, which sends the whole batch again under a new attempt number);
- ``("close", attempt)``: flush and exit (answers ``("closed", attempt, left, None)``).

A child that dies or hangs is killed and replaced, and the batch is sent again: its offsets are
stored only after a ``done`` without a problem, as with in-process publishing. The child ignores
SIGINT and SIGTERM (a terminal's Ctrl-C reaches the whole process group): the worker's orderly
stop closes it; if the worker dies, the pipe's end is the child's signal to exit.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from streams.errors import TransformError, TransientError
from streams.pipeline.events_out import ACK_TIMEOUT_S, ProducerQueue
from streams.pipeline.publishing import Origin, Refusal, encode_events
from streams.project.events import DomainEvent, domain_event

log = logging.getLogger(__name__)

CHUNK = 256  # records per message to the child: ~70 KB, about one pipe buffer
REPLY_MARGIN_S = 10.0  # beyond the ack timeout, a child that has not answered is taken for hung
_Fields = tuple[Any, ...]


def event_fields(e: DomainEvent) -> _Fields:
    """The event as a tuple of its fields in ``domain_event``'s order: a fifth of the pickling cost."""
    return (e.topic, e.record, e.id, e.source, e.time, e.subject, e.version, e.position, e.data)


class _Superseded(Exception):
    """A wait for a reply that a newer attempt made pointless (its publish was cancelled)."""


class ProcessEvents:
    def __init__(
        self,
        config: dict[str, Any],
        registry_url: str,
        max_bytes: int,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        native: bool = True,
    ) -> None:
        self.config = config
        self.registry_url = registry_url
        self.max_bytes = max_bytes
        self.ack_timeout_s = ack_timeout_s
        self.native = native  # [worker] avro_writer: the child's encoders as the inline ones
        self._ctx = multiprocessing.get_context("spawn")  # never fork a process with threads
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._staged: list[tuple[Origin, list[_Fields]]] = []
        self._unsendable: list[Refusal] = []
        self._sent = 0  # how many staged records the child has under the current attempt
        self._attempt = 0
        self._recv_lock = threading.Lock()
        self.restarts = 0

    def begin(self) -> None:
        self._staged = []
        self._unsendable = []
        self._next_attempt()

    def stage(self, origin: Origin, events: Sequence[DomainEvent]) -> None:
        self._staged.append((origin, [event_fields(e) for e in events]))
        if len(self._staged) - self._sent >= CHUNK:
            self._send_rest()

    async def publish(self) -> list[Refusal]:
        if not self._staged:
            return list(self._unsendable)
        self._send_rest()
        conn, attempt = self._conn, self._attempt
        try:
            if conn is None:
                raise EOFError
            conn.send(("flush", attempt))
            reply = await asyncio.to_thread(self._reply, attempt)
        except (OSError, EOFError) as exc:
            code = self._lost()
            msg = f"domain-event publisher process lost (exit code {code}); starting a new one"
            raise TransientError(msg) from exc
        _, _, refused, problem = reply
        if problem:
            self._next_attempt()  # the retry sends the whole batch again
            raise TransientError(problem)
        return [*self._unsendable, *refused]

    async def close(self) -> None:
        conn, proc = self._conn, self._proc
        if conn is None or proc is None:
            return
        left = 0
        try:
            conn.send(("close", self._attempt))
            left = (await asyncio.to_thread(self._reply, self._attempt))[2]
        except (OSError, EOFError):
            log.warning("domain-event publisher process did not close cleanly")
        finally:
            self._conn = self._proc = None
            conn.close()
            await asyncio.to_thread(proc.join, 5)
            if proc.is_alive():
                proc.kill()
        if left:
            log.warning("%d domain events still queued at stop (their batch was not committed)", left)

    def _next_attempt(self) -> None:
        self._attempt += 1
        self._sent = 0

    def _child(self) -> Connection:
        if self._conn is not None:
            return self._conn
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=serve,
            args=(child, self.config, self.registry_url, self.max_bytes, self.ack_timeout_s, self.native),
            name="changefeed-events",
            daemon=True,
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self._next_attempt()  # a new child has nothing: send everything staged
        return parent

    def _send_rest(self) -> None:
        """Send the staged records the child does not have yet (a lost child shows in ``publish``)."""
        conn = self._child()
        chunk = self._staged[self._sent :]
        try:
            blob = pickle.dumps(("events", self._attempt, chunk), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an event value that cannot be pickled: find its records
            blob = self._without_unsendable(chunk)
        try:
            conn.send_bytes(blob)
        except OSError:
            self._lost()
            return
        self._sent = len(self._staged)

    def _without_unsendable(self, chunk: list[tuple[Origin, list[_Fields]]]) -> bytes:
        """Refuse the records of ``chunk`` that cannot be pickled (poison), and drop them."""
        bad: set[Origin] = set()
        for origin, fields in chunk:
            try:
                pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                bad.add(origin)
                msg = f"domain event cannot be handed to the publisher process: {exc!r}"
                self._unsendable.append((origin, TransformError(msg)))
        kept = [item for item in chunk if item[0] not in bad]
        self._staged = [item for item in self._staged if item[0] not in bad]
        return pickle.dumps(("events", self._attempt, kept), protocol=pickle.HIGHEST_PROTOCOL)

    def _reply(self, attempt: int) -> tuple[Any, ...]:
        """The child's answer to ``attempt`` (in a thread; older attempts' answers are skipped)."""
        conn, proc = self._conn, self._proc
        if conn is None or proc is None:
            raise EOFError
        deadline = time.monotonic() + self.ack_timeout_s + REPLY_MARGIN_S
        with self._recv_lock:
            while True:
                if self._attempt != attempt:
                    raise _Superseded
                if conn.poll(0.2):
                    msg: tuple[Any, ...] = conn.recv()
                    if msg[1] == attempt:
                        return msg
                    continue  # the answer to an attempt given up on
                if not proc.is_alive():
                    raise EOFError
                if time.monotonic() > deadline:
                    waited = self.ack_timeout_s + REPLY_MARGIN_S
                    msg_ = f"no answer from the domain-event publisher process in {waited:.0f} s"
                    raise TimeoutError(msg_)

    def _lost(self) -> int | None:
        """Forget the child (killing it if it still runs); its exit code."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is None:
            return None
        self.restarts += 1
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        return proc.exitcode


def serve(
    conn: Connection,
    config: dict[str, Any],
    registry_url: str,
    max_bytes: int,
    ack_s: float,
    native: bool = True,
) -> None:
    """The child process: encode and produce what the worker sends until it closes or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [events] %(message)s")
    from streams.pipeline.publisher import Encoders
    from streams.registry.client import RegistryClient

    encoders = Encoders(RegistryClient(registry_url), native)
    queue = ProducerQueue(config)
    attempt, sent = -1, 0
    refused: list[Refusal] = []
    problem: str | None = None
    while True:
        try:
            msg = pickle.loads(conn.recv_bytes())  # noqa: S301 - our own process's pickles
        except (EOFError, OSError):
            return  # the worker is gone: what is queued is not committed anyway
        kind, at = msg[0], msg[1]
        if kind == "close":
            conn.send(("closed", at, queue.flush(ack_s), None))
            return
        if at != attempt:
            attempt, sent, refused, problem = at, 0, [], None
        if kind == "events" and problem is None:
            for origin, fields in msg[2]:
                try:
                    out = encode_events(origin, [domain_event(*f) for f in fields], encoders, max_bytes)
                except TransientError as exc:
                    problem = f"domain events not encoded: {exc}"
                    break
                except Exception as exc:  # this record's poison, as in-process encoding says
                    refused.append((origin, _portable(exc)))
                    continue
                if not _produce_all(queue, out, ack_s):
                    problem = f"librdkafka's queue stayed full for {ack_s:.0f} s (broker away?)"
                    break
                sent += len(out)
        elif kind == "flush":
            verdict = queue.outcome(queue.flush(ack_s), sent)
            conn.send(("done", at, refused, problem or verdict))


def _produce_all(queue: ProducerQueue, out: list[Any], wait_s: float) -> bool:
    """Queue every event; False if the local queue stays full for ``wait_s`` (no ack drains it)."""
    deadline: float | None = None
    for o in out:
        while not queue.produce(o):
            deadline = deadline or time.monotonic() + wait_s
            if time.monotonic() > deadline:
                return False
            queue.poll(0.1)
    return True


def _portable(exc: Exception) -> Exception:
    """``exc`` if it crosses the pipe intact, else a ``TransformError`` with its text."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    except Exception:
        return TransformError(f"{type(exc).__name__}: {exc}")
    return exc
