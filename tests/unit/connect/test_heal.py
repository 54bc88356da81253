# ruff: noqa: E501  (real Java trace lines are long)
"""The supervisor's policy: which failures it restarts, how often, and what it leaves FAILED."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from streams.connect.heal import Backoff, Cause, Healer, classify, first_line
from streams.connect.models import ConnectorStatus, TaskState

# Shapes of real Connect task traces (first line + the root cause Connect prints).
REGISTRY_DOWN = """org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler
\tat org.apache.kafka.connect.runtime.errors.RetryWithToleranceOperator.execAndHandleError(RetryWithToleranceOperator.java:260)
Caused by: org.apache.kafka.connect.errors.DataException: Failed to serialize Avro data from topic customers.public.customers :
Caused by: org.apache.kafka.common.errors.SerializationException: Error serializing Avro message
Caused by: java.net.ConnectException: Connection refused (Connection refused)
"""
TOO_LARGE = """org.apache.kafka.connect.errors.ConnectException: Unrecoverable exception from producer send callback
\tat org.apache.kafka.connect.runtime.WorkerSourceTask.maybeThrowProducerSendException(WorkerSourceTask.java:312)
Caused by: org.apache.kafka.common.errors.RecordTooLargeException: The message is 20972123 bytes when serialized which is larger than 8388608, which is the value of the max.request.size configuration.
"""
INCOMPATIBLE = """org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler
Caused by: org.apache.kafka.connect.errors.DataException: Failed to serialize Avro data from topic customers.public.customers :
Caused by: org.apache.kafka.common.errors.SerializationException: Error registering Avro schema
Caused by: io.confluent.kafka.schemaregistry.client.rest.exceptions.RestClientException: Schema being registered is incompatible with an earlier schema for subject "customers.public.customers-value"; error code: 409
"""
AUTH = """io.debezium.DebeziumException: Couldn't obtain encoding for database customers
Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user "debezium_customers"
"""
PG_DOWN = """io.debezium.DebeziumException: Could not execute heartbeat action query
Caused by: org.postgresql.util.PSQLException: Connection to 127.0.0.1:15432 refused. Check that the hostname and port are correct
Caused by: java.net.ConnectException: Connection refused
"""
NULL_POINTER = """java.lang.NullPointerException: Cannot invoke "Object.toString()" because "x" is null
\tat io.debezium.Something.run(Something.java:1)
"""


@pytest.mark.parametrize(
    ("trace", "cause"),
    [
        (REGISTRY_DOWN, Cause.TRANSIENT),
        (PG_DOWN, Cause.TRANSIENT),
        ("org.apache.kafka.common.errors.TimeoutException: Timeout expired after 60000ms", Cause.TRANSIENT),
        (TOO_LARGE, Cause.PERMANENT),
        (INCOMPATIBLE, Cause.PERMANENT),
        (AUTH, Cause.PERMANENT),
        (NULL_POINTER, Cause.UNKNOWN),
        ("", Cause.UNKNOWN),
    ],
)
def test_classify_by_trace(trace: str, cause: Cause) -> None:
    assert classify(trace) is cause


def test_first_line_skips_blank_lines() -> None:
    assert first_line("\n\n  java.io.IOException: x\n\tat y") == "java.io.IOException: x"


def test_backoff_doubles_up_to_the_cap() -> None:
    b = Backoff(initial_s=5, max_s=30)
    assert [b.delay(n) for n in range(5)] == [5, 10, 20, 30, 30]


@dataclass
class FakeConnect:
    """Just the three calls the healer makes, recording restarts (the policy is under test here)."""

    statuses: dict[str, ConnectorStatus]
    restarts: list[tuple[str, int | None]] = field(default_factory=list)

    def names(self) -> list[str]:
        return sorted(self.statuses)

    def status(self, name: str) -> ConnectorStatus:
        return self.statuses[name]

    def restart_task(self, name: str, task: int) -> None:
        self.restarts.append((name, task))

    def restart(self, name: str, *, include_tasks: bool = True, only_failed: bool = False) -> None:
        self.restarts.append((name, None))


def _status(name: str, task_state: str, trace: str = "", state: str = "RUNNING") -> ConnectorStatus:
    return ConnectorStatus(name, state, "w", "source", "", (TaskState(0, task_state, "w", trace),))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_transient_failure_is_restarted_with_backoff_between_attempts() -> None:
    fake, clock = FakeConnect({"c": _status("c", "FAILED", REGISTRY_DOWN)}), Clock()
    healer = Healer(fake, Backoff(initial_s=5, max_s=60), clock=clock)  # type: ignore[arg-type]
    (first,) = healer.heal_once()
    assert first.restarted
    assert first.attempt == 1
    assert fake.restarts == [("c", 0)]
    clock.now += 4  # still failing, inside the first backoff: no second restart yet
    (waiting,) = healer.heal_once()
    assert not waiting.restarted
    assert waiting.wait_s == pytest.approx(1)
    clock.now += 1
    assert healer.heal_once()[0].restarted
    clock.now += 9  # second backoff is 10 s
    assert not healer.heal_once()[0].restarted
    clock.now += 1
    assert healer.heal_once()[0].attempt == 3
    assert fake.restarts == [("c", 0)] * 3


def test_permanent_and_unknown_failures_stay_failed() -> None:
    fake = FakeConnect(
        {
            "big": _status("big", "FAILED", TOO_LARGE),
            "schema": _status("schema", "FAILED", INCOMPATIBLE),
            "odd": _status("odd", "FAILED", NULL_POINTER),
        }
    )
    actions = Healer(fake).heal_once()  # type: ignore[arg-type]
    assert fake.restarts == []
    assert {a.connector: a.cause for a in actions} == {
        "big": Cause.PERMANENT,
        "schema": Cause.PERMANENT,
        "odd": Cause.UNKNOWN,
    }
    assert all("left alone" in str(a) for a in actions)


def test_failed_connector_instance_is_restarted_with_its_failed_tasks() -> None:
    fake = FakeConnect({"c": _status("c", "FAILED", state="FAILED")})
    fake.statuses["c"] = ConnectorStatus("c", "FAILED", "w", "source", PG_DOWN, ())
    (action,) = Healer(fake).heal_once()  # type: ignore[arg-type]
    assert action.restarted
    assert action.task is None
    assert fake.restarts == [("c", None)]


def test_backoff_starts_over_once_the_task_stayed_healthy() -> None:
    fake, clock = FakeConnect({"c": _status("c", "FAILED", REGISTRY_DOWN)}), Clock()
    healer = Healer(fake, Backoff(initial_s=5, max_s=60, healthy_after_s=100), clock=clock)  # type: ignore[arg-type]
    healer.heal_once()
    clock.now += 5
    healer.heal_once()  # attempt 2
    fake.statuses["c"] = _status("c", "RUNNING")
    clock.now += 101
    assert healer.heal_once() == []
    fake.statuses["c"] = _status("c", "FAILED", REGISTRY_DOWN)
    assert healer.heal_once()[0].attempt == 1


def test_running_connectors_are_left_alone() -> None:
    fake = FakeConnect({"ok": _status("ok", "RUNNING")})
    assert Healer(fake).heal_once() == []  # type: ignore[arg-type]
    assert fake.restarts == []


def test_a_task_another_supervisor_already_restarted_is_not_restarted_again() -> None:
    fake = FakeConnect({"c": _status("c", "FAILED", REGISTRY_DOWN)})
    answers = iter([_status("c", "FAILED", REGISTRY_DOWN), _status("c", "RUNNING")])
    fake.status = lambda name: next(answers)  # type: ignore[method-assign]
    (action,) = Healer(fake).heal_once()  # type: ignore[arg-type]
    assert not action.restarted
    assert fake.restarts == []
