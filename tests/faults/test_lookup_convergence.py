"""E6: two workers under a plain load, customers and orders owned by different workers.

Each worker runs its own consumer group over one sink schema — one consumes the customers
topic, the other the orders and outbox topics — so every customer and its orders are flushed
by different processes, milliseconds apart. Before the lookup lock this ended with
``order_view ⋈ customer_directory`` divergent (NULL names for good) twice in one 20 s run. Twenty
load bursts, each followed by the oracle: the lookup check and source ≡ sink must hold in all.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.faults.pipeline import FaultPipeline, fault_pipeline

__all__ = ["fault_pipeline"]
ROUNDS = 20


@pytest.mark.scenario("E6")
@pytest.mark.timeout(1200)
def test_e6_lookup_converges_whichever_worker_flushes_first(
    fault_pipeline: FaultPipeline, scenario_numbers: dict[str, Any]
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    customers = [t for t in fp.topics if t.startswith("customers.")]
    orders = [t for t in fp.topics if t not in customers]
    assert customers, fp.topics
    assert orders, fp.topics
    dlq_before = fp.dlq_counts()
    with (
        fp.workers("e6-customers", {"CHANGEFEED_PIPELINE__TOPICS": json.dumps(customers)}) as one,
        fp.workers("e6-orders", {"CHANGEFEED_PIPELINE__TOPICS": json.dumps(orders)}) as other,
    ):
        one.start(1)
        other.start(1)
        diverged = []
        for attempt in range(ROUNDS):
            fp.run_load(rate=120, duration_s=3, mix="70:25:5")
            results = fp.converge(180)
            one.check_alive()
            other.check_alive()
            diverged += [(attempt, r.table, r.divergent) for r in results if not r.ok]
            if diverged:
                break
        numbers.update({"rounds": ROUNDS, "diverged_rounds": len(diverged)})
        assert not diverged, f"the lookup did not converge: {diverged}"
        fp.oracle(numbers, dlq_before=dlq_before)
