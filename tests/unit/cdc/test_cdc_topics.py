"""Topic names are built in one place and refuse names Kafka would reject."""

from __future__ import annotations

import pytest

from streams.cdc import dlq_topic, domain_topic, outbox_topic, parse_table_topic, table_topic
from streams.cdc.topics import subject_topic
from streams.errors import ConfigError


def test_names() -> None:
    assert table_topic("cf.pg", "public", "customers") == "cf.pg.public.customers"
    assert parse_table_topic("cf.pg.public.customers") == ("cf.pg", "public", "customers")
    assert dlq_topic("cf.pg.public.customers") == "cf.pg.public.customers.dlq"
    assert dlq_topic("x.dlq") == "x.dlq"
    assert outbox_topic("order") == "outbox.event.order"
    assert domain_topic("orders") == "domain.orders"


@pytest.mark.parametrize(
    "build",
    [
        lambda: table_topic("cf", "a.b", "t"),
        lambda: table_topic("cf", "s", ""),
        lambda: table_topic("c f", "s", "t"),
        lambda: outbox_topic("x; DROP TABLE canary; --"),
        lambda: domain_topic("ünicode"),
        lambda: domain_topic("orders.order"),
        lambda: subject_topic("no-record-"),
        lambda: table_topic("p" * 250, "s", "t"),
        lambda: parse_table_topic("no-dots"),
    ],
)
def test_bad_names_fail_loudly(build: object) -> None:
    with pytest.raises(ConfigError):
        build()  # type: ignore[operator]  # parametrized callables


def test_domain_topics_are_the_contracts_topics() -> None:
    """One source of truth: the contracts' subjects name the topic each transform publishes to."""
    from streams.demo.project import customers, orders
    from streams.registry.contracts import load_index
    from streams.stack.paths import repo_root

    contracts = load_index(repo_root() / "schemas")
    by_domain: dict[str, set[str]] = {}
    for c in contracts:
        if c.subject.startswith("domain."):
            record = c.subject.rpartition("-")[2]
            by_domain.setdefault(record.split(".")[2], set()).add(subject_topic(c.subject))
    assert by_domain == {"customers": {domain_topic("customers")}, "orders": {domain_topic("orders")}}
    assert customers.TOPIC == domain_topic("customers") == "domain.customers"
    assert orders.TOPIC == domain_topic("orders") == "domain.orders"
