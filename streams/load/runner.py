"""Drive both source services at a fixed rate for a fixed time, deterministically for a seed.

Operations alternate between the sources (customers, orders, customers, ...), so ``rate`` is
the total number of source transactions per second. Each source has its own generator seeded
from ``(seed, source)``: what one source does never depends on the other's timing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from streams.load import customers, orders
from streams.load.keys import KeyPool
from streams.load.mix import Mix, WriteOp
from streams.load.rate import RateLimiter
from streams.load.written import LoadTally, Written
from streams.settings import Settings

SOURCES = ("customers", "orders")


class Writer(Protocol):
    source: str
    tokens: bool

    def load_keys(self) -> None: ...

    def write(self, op: WriteOp) -> Written: ...


@dataclass(frozen=True)
class LoadPlan:
    rate: float = 50.0  # source transactions per second, both sources together
    duration_s: float = 30.0
    mix: Mix = field(default_factory=lambda: Mix(70, 25, 5))
    seed: int = 1
    hot_keys: int = 0  # >0: this many keys per source take ``hot_fraction`` of updates/deletes
    hot_fraction: float = 0.8
    large_every: int = 10  # about one row in N gets a 16 KiB (TOASTed) text value
    sources: tuple[str, ...] = SOURCES
    tokens: bool = False  # a consistency token per commit (Written.token); one more round trip each

    @property
    def operations(self) -> int:
        return max(1, round(self.rate * self.duration_s))


@dataclass
class LoadReport:
    plan: LoadPlan
    tally: LoadTally
    started_at: datetime
    finished_at: datetime
    behind_resets: int
    writes: list[Written]

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def achieved_rate(self) -> float:
        return self.tally.total / self.elapsed_s if self.elapsed_s > 0 else 0.0


def rng_for(seed: int, source: str) -> random.Random:
    return random.Random(f"{seed}:{source}")  # noqa: S311 - demo data, not secrets


def run_load(
    settings: Settings,
    plan: LoadPlan,
    on_write: Callable[[Written], None] | None = None,
    limiter: RateLimiter | None = None,
) -> LoadReport:
    """Run the plan; every operation is its own committed transaction."""
    limiter = limiter or RateLimiter(plan.rate)
    customer_keys = KeyPool(plan.hot_keys, plan.hot_fraction)
    with ExitStack() as stack:
        writers: list[Writer] = []
        if "customers" in plan.sources:
            pg = stack.enter_context(customers.connect(settings.source_postgres))
            writers.append(
                customers.CustomersWriter(
                    pg, rng_for(plan.seed, "customers"), customer_keys, plan.large_every
                )
            )
        if "orders" in plan.sources:
            maria = orders.connect(settings.source_mariadb)
            stack.callback(maria.close)
            order_keys = KeyPool(plan.hot_keys, plan.hot_fraction)
            writers.append(
                orders.OrdersWriter(
                    maria, rng_for(plan.seed, "orders"), order_keys, customer_keys, plan.large_every
                )
            )
        if not writers:
            msg = f"no known source among {plan.sources}; use {SOURCES}"
            raise ValueError(msg)
        for w in writers:
            w.load_keys()
            w.tokens = plan.tokens
        op_rng = {w.source: rng_for(plan.seed, f"{w.source}:ops") for w in writers}
        tally, written = LoadTally(), []
        started = datetime.now(UTC)
        for i in range(plan.operations):
            writer = writers[i % len(writers)]
            limiter.wait()
            result = writer.write(plan.mix.choose(op_rng[writer.source]))
            tally.add(result)
            written.append(result)
            if on_write is not None:
                on_write(result)
        return LoadReport(plan, tally, started, datetime.now(UTC), limiter.resets, written)
