"""Per-source settings of a project's tables file: how a source's transactions are applied.

A *source* is one connector (its ``topic.prefix`` names the source). By default every change is
applied on its own (``per-change``): a reader of the sink may see part of a source transaction.
``atomic`` applies each source transaction whole, in one sink transaction, in commit order
(``streams.pipeline.transactions`` and ``streams.pipeline.atomic``)::

    [[sources]]
    connector = "orders"              # a connector file's name
    transactions = "atomic"           # default "per-change"
    max_transaction_rows = 10000      # a bigger transaction is applied in parts
    max_transaction_wait_s = 30       # one still incomplete this long is applied in parts
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict, Field

from streams.connect.definitions import ConnectorDefinition
from streams.errors import ConfigError

# Large enough for the business transactions read models guard (an order and its lines, a
# transfer), small enough that the buffered records of one stay a few tens of MiB.
DEFAULT_MAX_TRANSACTION_ROWS = 10_000
DEFAULT_MAX_TRANSACTION_WAIT_S = 30.0


class TransactionMode(enum.StrEnum):
    PER_CHANGE = "per-change"
    ATOMIC = "atomic"


class SourceSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    connector: str
    transactions: TransactionMode = TransactionMode.PER_CHANGE
    max_transaction_rows: int = Field(DEFAULT_MAX_TRANSACTION_ROWS, ge=1)
    max_transaction_wait_s: float = Field(DEFAULT_MAX_TRANSACTION_WAIT_S, gt=0)

    @property
    def atomic(self) -> bool:
        return self.transactions is TransactionMode.ATOMIC


TRANSACTION_METADATA = "provide.transaction.metadata"


@dataclass(frozen=True)
class AtomicSource:
    """One atomic source as the worker runs it: which topics, which transaction topic."""

    spec: SourceSpec
    prefix: str  # the connector's topic.prefix: the source's name
    connector_class: str
    collections: Mapping[str, str]  # declared change topic → data collection (source table)

    @property
    def name(self) -> str:
        return self.prefix

    @property
    def transaction_topic(self) -> str:
        return f"{self.prefix}.transaction"

    @property
    def topics(self) -> list[str]:
        """Every topic its owner consumes: the declared change topics and the transaction topic."""
        return [*sorted(self.collections), self.transaction_topic]


def atomic_connectors(specs: Iterable[SourceSpec]) -> set[str]:
    return {s.connector for s in specs if s.atomic}


def with_transaction_metadata(
    definitions: Sequence[ConnectorDefinition], atomic: set[str]
) -> list[ConnectorDefinition]:
    """The definitions as ``connectors apply`` sends them: an atomic source's connector gets
    ``provide.transaction.metadata=true`` (the gate needs its BEGIN/END records)."""
    out = []
    for d in definitions:
        if d.name in atomic and d.config.get(TRANSACTION_METADATA) != "true":
            d = replace(d, config={**d.config, TRANSACTION_METADATA: "true"})
        out.append(d)
    return out


def atomic_sources(
    specs: Iterable[SourceSpec],
    definitions: Sequence[ConnectorDefinition],
    topics: Mapping[str, str],
    origin: str = "tables file",
) -> tuple[AtomicSource, ...]:
    """The atomic ``[[sources]]`` resolved against the connector files and the declared tables'
    topics (``source table → topic``); ``ConfigError`` saying what to fix."""
    by_name = {d.name: d for d in definitions}
    out = []
    for spec in specs:
        d = by_name.get(spec.connector)
        if d is None:
            known = ", ".join(sorted(by_name)) or "none"
            msg = f"{origin}: [[sources]] connector {spec.connector!r} has no connector file (found: {known})"
            raise ConfigError(msg)
        if not spec.atomic:
            continue
        if d.config.get(TRANSACTION_METADATA, "true") != "true":
            msg = (
                f"{origin}: source {spec.connector!r} is atomic but its connector file sets"
                f" {TRANSACTION_METADATA} = {d.config[TRANSACTION_METADATA]!r}; remove that line"
                " (`changefeed connectors apply` sets it to true)"
            )
            raise ConfigError(msg)
        prefix = d.config.get("topic.prefix", "")
        collections = {topic: table for table, topic in topics.items() if topic.startswith(prefix + ".")}
        if not prefix or not collections:
            msg = f"{origin}: atomic source {spec.connector!r} captures none of the declared tables"
            raise ConfigError(msg)
        out.append(AtomicSource(spec, prefix, d.connector_class, collections))
    return tuple(out)
