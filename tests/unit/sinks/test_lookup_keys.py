"""The keys a flush's lookup refresh sends: collected once per flush, the same as per target."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from streams.sinks import Column, TableMapping
from streams.sinks.batch import Batch
from streams.sinks.flush import first_keys, lookup_steps
from streams.sinks.lookup import Lookup


def mapping(table: str, schema: str = "sk") -> Any:
    return SimpleNamespace(sink_schema=schema, sink_table=table, key=("id",))


def writes(*pairs: tuple[Any, Any]) -> list[Any]:
    return [SimpleNamespace(mapping=m, key=k) for m, k in pairs]


def test_first_keys_by_sink_table_across_mapping_versions_and_runs() -> None:
    orders, orders_v2, customers = mapping("orders"), mapping("orders"), mapping("customers")
    other_schema = mapping("orders", schema="elsewhere")
    ws = writes(
        (orders, (1, "x")), (orders, (2, "y")), (customers, (7,)), (orders_v2, (3, "z")),
        (orders, (1, "w")), (other_schema, (9, "q")),
    )  # fmt: skip
    assert first_keys(ws) == {
        ("sk", "orders"): {1, 2, 3},
        ("sk", "customers"): {7},
        ("elsewhere", "orders"): {9},
    }
    assert first_keys([]) == {}


def test_a_keyless_mapping_is_skipped_not_an_index_error() -> None:
    keyless = SimpleNamespace(sink_schema="sk", sink_table="t", key=())
    assert first_keys(writes((keyless, ()), (mapping("u"), (1,)))) == {("sk", "u"): {1}}


def target() -> TableMapping:
    lk = Lookup("customers", "id", "customer_id", (("customer_email", ("email",)),), "customer")
    return TableMapping(
        "public.orders",
        "orders",
        [Column("id", type="bigint"), Column("customer_id", type="bigint"), Column("customer_email")],
        key=["id"],
        sink_schema="sk",
        lookups=[lk],
    )


def test_lookup_steps_send_the_same_keys_with_or_without_precomputed_ones() -> None:
    t = target()
    ws = writes(
        (t, (5,)), (mapping("customers"), (2,)), (t, (4,)), (mapping("customers", "other"), (8,)),
        (mapping("orders", "other"), (6,)),  # the target's table name in another schema counts
    )  # fmt: skip
    batch = Batch(writes=ws)
    removed = {("sk", "customers"): {3}}
    alone = [s.params for s in lookup_steps(batch, t, removed)]
    shared = [s.params for s in lookup_steps(batch, t, removed, first_keys(ws))]
    assert alone == shared == [[[4, 5, 6], [2, 3]]]


def test_lookup_steps_skip_a_lookup_with_nothing_touched() -> None:
    assert list(lookup_steps(Batch(writes=writes((mapping("elsewhere"), (1,)))), target())) == []
