"""The applied watermark a flush writes, and how a source's position is derived from them."""

from __future__ import annotations

from typing import Any

from streams.consistency.token import Kind
from streams.consistency.watermark import connect_evidence, minimum, source_position
from streams.serve.server import wait_budget
from streams.sinks.applied import AppliedTracker, store_applied_params


def pg(seq: list[Any], snapshot: str = "false") -> dict[str, Any]:
    return {
        "connector": "postgresql",
        "sequence": str(seq).replace("None", "null").replace("'", '"'),
        "snapshot": snapshot,
    }


def maria(gtid: str) -> dict[str, Any]:
    return {"connector": "mariadb", "gtid": gtid, "snapshot": "false"}


def test_postgres_record_claims_the_transaction_before_it() -> None:
    t, out = AppliedTracker(), {}
    t.observe(out, "c.public.t", 0, pg(["100", "150"]))
    t.observe(out, "c.public.t", 0, pg(["100", "160"]))
    t.observe(out, "c.public.t", 0, pg(["200", "210"]))
    assert out == {("c.public.t", 0): {0: 200}}


def test_snapshot_and_first_after_snapshot_claim_nothing() -> None:
    t, out = AppliedTracker(), {}
    t.observe(out, "x", 0, pg([None, "500"], snapshot="true"))
    t.observe(out, "x", 0, pg(["400", "400"], snapshot="incremental"))
    t.observe(out, "x", 0, pg([None, "510"]))
    t.observe(out, "x", 0, {})  # a tombstone: no source block
    assert out == {}


def test_mariadb_gtid_completes_the_previous_sequence_and_the_previous_transaction() -> None:
    t, out = AppliedTracker(), {}
    t.observe(out, "o", 0, maria("0-1-10"))
    assert out == {("o", 0): {0: 9}}  # 10 may have more rows after this one
    t.observe(out, "o", 0, maria("0-1-10"))
    assert out == {("o", 0): {0: 9}}
    out.clear()  # a flush committed; the next batch's first record completes 10
    t.observe(out, "o", 0, maria("0-1-12"))
    assert out == {("o", 0): {0: 11}}
    t.observe(out, "o", 0, maria("3-1-7"))  # another domain follows: 0-…-12 is complete
    assert out == {("o", 0): {0: 12, 3: 6}}
    t.discard([("o", 0)])
    out.clear()
    t.observe(out, "o", 0, maria("3-1-7"))
    assert out == {("o", 0): {3: 6}}  # revoked: nothing remembered


def test_store_params_are_column_arrays() -> None:
    params = store_applied_params("g", "s", {("b", 1): {0: 5}, ("a", 0): {0: 7, 2: 1}})
    assert params == ["g", ["a", "a", "b"], [0, 0, 1], [0, 2, 0], [7, 1, 5], "s"]


def test_source_position_is_the_minimum_over_partitions() -> None:
    parts = [("a", 0), ("b", 0)]
    wm = {("a", 0): {0: 300}, ("b", 0): {0: 100}}
    assert source_position(parts, wm, (), {}) == {0: 100}
    # b is caught up (no lag) and the connector produced up to 250: b counts as 250
    assert source_position(parts, wm, [("b", 0)], {0: 250}) == {0: 250}
    # a partition with no watermark yet holds every domain back
    assert source_position([*parts, ("c", 0)], wm, (), {}) == {0: -1}
    assert source_position([*parts, ("c", 0)], wm, [("c", 0)], {0: 90}) == {0: 90}
    # no change topic at all yet: what the connector produced is all there is
    assert source_position([], {}, (), {0: 42}) == {0: 42}


def test_minimum_of_domains_missing_somewhere() -> None:
    assert minimum([{0: 5, 1: 3}, {0: 7}]) == {0: 5, 1: -1}
    assert minimum([]) == {}


def test_connect_offsets_as_evidence() -> None:
    pg_offsets = [{"partition": {"server": "c"}, "offset": {"lsn_commit": 143567720, "lsn": 143567720}}]
    assert connect_evidence(Kind.POSTGRES, pg_offsets) == {0: 143567720}
    maria_offsets = [{"offset": {"gtids": "0-1-1127,1-2-4", "file": "mariadb-bin.000004", "pos": 1230}}]
    assert connect_evidence(Kind.MARIADB, maria_offsets) == {0: 1127, 1: 4}
    assert connect_evidence(Kind.MARIADB, []) == {}


def test_wait_budget_respects_deadline_and_cap() -> None:
    assert wait_budget(5, None, 30) == 5
    assert wait_budget(0, None, 30) == 30
    assert wait_budget(5, 1.0, 30) == 0.9
    assert wait_budget(5, 20.0, 30) == 5
    assert wait_budget(100, None, 30) == 30
    assert wait_budget(30, 20.0, 30) == 19.0
    assert wait_budget(5, 0.01, 30) == 0.0


def test_flush_writes_the_watermark_in_its_transaction_with_a_notify() -> None:
    from streams.sinks.batch import Batch
    from streams.sinks.flush import Pending, flush_steps

    batch = Batch()
    batch.mark("c.public.t", 0, 41)
    plan = flush_steps(batch, "g", "s", extra=Pending(applied={("c.public.t", 0): {0: 500}}))
    queries = []
    try:
        step = next(plan)
        while True:
            queries.append((step.query.as_string(None), list(step.params)))
            step = plan.send([])
    except StopIteration:
        pass
    offsets = next(i for i, (q, _) in enumerate(queries) if "changefeed_offsets" in q)
    applied = next(i for i, (q, _) in enumerate(queries) if "changefeed_applied" in q)
    assert offsets < applied  # one transaction: the driver commits after the last step
    query, params = queries[applied]
    assert "GREATEST" in query
    assert "pg_notify('changefeed_applied', %s)" in query
    assert params == ["g", ["c.public.t"], [0], [0], [500], "s"]
    # nothing observed: no watermark statement at all
    plan = flush_steps(batch, "g", "s")
    seen = [next(plan).query.as_string(None)]
    try:
        while True:
            seen.append(plan.send([]).query.as_string(None))
    except StopIteration:
        pass
    assert not any("changefeed_applied" in q for q in seen)
