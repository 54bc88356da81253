"""Atomic sources' pure parts: the tables file's [[sources]], the connector config, the flush's
progress steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.connect.definitions import ConnectorDefinition
from streams.errors import ConfigError
from streams.pipeline.atomic import _then
from streams.project.sources import (
    TRANSACTION_METADATA,
    TransactionMode,
    atomic_connectors,
    atomic_sources,
    with_transaction_metadata,
)
from streams.project.tables import parse_tables
from streams.sinks.contract import FlushResult
from streams.sinks.flush import Step
from streams.sinks.tx_progress import parse_progress, progress_steps

PG = "io.debezium.connector.postgresql.PostgresConnector"


def definition(name: str, **config: str) -> ConnectorDefinition:
    return ConnectorDefinition(name, {"connector.class": PG, "topic.prefix": name, **config}, Path("x"))


def test_sources_default_to_per_change_and_atomic_has_bounds() -> None:
    f = parse_tables(
        '[[sources]]\nconnector = "a"\n'
        '[[sources]]\nconnector = "b"\ntransactions = "atomic"\nmax_transaction_rows = 5\n'
    )
    a, b = f.sources
    assert a.transactions is TransactionMode.PER_CHANGE
    assert not a.atomic
    assert b.atomic
    assert b.max_transaction_rows == 5
    assert b.max_transaction_wait_s == 30
    assert atomic_connectors(f.sources) == {"b"}


@pytest.mark.parametrize(
    "text",
    [
        '[[sources]]\nconnector = "a"\ntransactions = "whole"\n',
        '[[sources]]\nconnector = "a"\nmax_transaction_rows = 0\n',
        '[[sources]]\nconnector = "a"\n[[sources]]\nconnector = "a"\n',
    ],
)
def test_bad_sources_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_tables(text)


def test_apply_adds_transaction_metadata_to_atomic_connectors_only() -> None:
    out = with_transaction_metadata([definition("a"), definition("b")], {"b"})
    assert TRANSACTION_METADATA not in out[0].config
    assert out[1].config[TRANSACTION_METADATA] == "true"


def test_atomic_sources_resolve_topics_and_refuse_what_cannot_work() -> None:
    f = parse_tables('[[sources]]\nconnector = "a"\ntransactions = "atomic"\n')
    topics = {"s.t": "a.s.t", "s.u": "a.s.u", "o.v": "b.o.v"}
    (src,) = atomic_sources(f.sources, [definition("a"), definition("b")], topics)
    assert src.collections == {"a.s.t": "s.t", "a.s.u": "s.u"}
    assert src.topics == ["a.s.t", "a.s.u", "a.transaction"]
    with pytest.raises(ConfigError, match="no connector file"):
        atomic_sources(f.sources, [definition("b")], topics)
    with pytest.raises(ConfigError, match=r"provide\.transaction\.metadata"):
        atomic_sources(f.sources, [definition("a", **{TRANSACTION_METADATA: "false"})], topics)
    with pytest.raises(ConfigError, match="captures none"):
        atomic_sources(f.sources, [definition("a")], {"o.v": "b.o.v"})


def test_progress_steps_store_split_transactions_and_forget_finished_ones() -> None:
    steps = progress_steps("cf", "g", "src", {"7": {"s.t": 3}}, ["5"])
    assert len(steps) == 2
    assert steps[0][1] == ["g", "src", ["7"], ['{"s.t": 3}']]
    assert steps[1][1] == ["g", "src", ["5"]]
    assert progress_steps("cf", "g", "src", {}, []) == []
    assert parse_progress([("7", {"s.t": 3}), ("8", '{"s.u": 1}')]) == {"7": {"s.t": 3}, "8": {"s.u": 1}}


def test_progress_steps_run_after_the_flush_inside_its_transaction() -> None:
    """The driver ``send``s each step's rows into the plan; the appended steps take them too."""

    def flush() -> Any:
        rows = yield Step("q1", [], fetch=True)
        assert rows == ["r1"]
        return FlushResult(applied=len(rows))

    plan = _then(flush(), [Step("p1", [], fetch=False), Step("p2", [], fetch=False)])
    seen = [next(plan).query]
    try:
        while True:
            seen.append(plan.send(["r1"] if seen[-1] == "q1" else []).query)
    except StopIteration as done:
        result = done.value
    assert seen == ["q1", "p1", "p2"]
    assert result.applied == 1
