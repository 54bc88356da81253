"""Typed views of Kafka Connect REST answers, parsed once so callers never index raw JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RUNNING = "RUNNING"
FAILED = "FAILED"


@dataclass(frozen=True)
class TaskState:
    """One task's state as `GET /connectors/{name}/status` reports it."""

    id: int
    state: str
    worker_id: str
    trace: str = ""

    @property
    def trace_summary(self) -> str:
        """The first line of the Java stack trace plus its root `Caused by:` line."""
        lines = [line.strip() for line in self.trace.splitlines() if line.strip()]
        if not lines:
            return ""
        causes = [line for line in lines if line.startswith("Caused by:")]
        return lines[0] if not causes else f"{lines[0]} | {causes[-1]}"


@dataclass(frozen=True)
class ConnectorStatus:
    """A connector's state, its tasks' states and the worker running it."""

    name: str
    state: str
    worker_id: str
    type: str
    trace: str = ""
    tasks: tuple[TaskState, ...] = field(default_factory=tuple)

    @property
    def running(self) -> bool:
        """True only when the connector and every task (at least one) are RUNNING."""
        return self.state == RUNNING and bool(self.tasks) and all(t.state == RUNNING for t in self.tasks)

    @property
    def failed_tasks(self) -> tuple[TaskState, ...]:
        return tuple(t for t in self.tasks if t.state == FAILED)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ConnectorStatus:
        connector = body.get("connector", {})
        tasks = tuple(
            TaskState(
                id=int(t.get("id", -1)),
                state=str(t.get("state", "")),
                worker_id=str(t.get("worker_id", "")),
                trace=str(t.get("trace", "")),
            )
            for t in body.get("tasks", [])
        )
        return cls(
            name=str(body.get("name", "")),
            state=str(connector.get("state", "")),
            worker_id=str(connector.get("worker_id", "")),
            type=str(body.get("type", "")),
            trace=str(connector.get("trace", "")),
            tasks=tasks,
        )


@dataclass(frozen=True)
class ConfigProblem:
    """One property the validate endpoint rejected, with Connect's own messages."""

    name: str
    errors: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}: {'; '.join(self.errors)}"


@dataclass(frozen=True)
class ValidationResult:
    """The answer of `PUT /connector-plugins/{class}/config/validate`."""

    connector_class: str
    error_count: int
    problems: tuple[ConfigProblem, ...]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ValidationResult:
        problems = []
        for entry in body.get("configs", []):
            value = entry.get("value") or {}  # Connect sends null for some internal keys
            errors = tuple(str(e) for e in value.get("errors", []))
            if errors:
                problems.append(ConfigProblem(name=str(value.get("name", "?")), errors=errors))
        return cls(
            connector_class=str(body.get("name", "")),
            error_count=int(body.get("error_count", len(problems))),
            problems=tuple(problems),
        )


@dataclass(frozen=True)
class SourceOffset:
    """One source partition and its committed offset (`GET /connectors/{name}/offsets`)."""

    partition: Mapping[str, Any]
    offset: Mapping[str, Any] | None
