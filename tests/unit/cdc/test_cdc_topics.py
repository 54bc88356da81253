"""Topic names are built in one place and refuse names Kafka would reject."""

from __future__ import annotations

import pytest

from streams.cdc import dlq_topic, domain_topic, outbox_topic, parse_table_topic, table_topic
from streams.errors import ConfigError


def test_names() -> None:
    assert table_topic("cf.pg", "public", "customers") == "cf.pg.public.customers"
    assert parse_table_topic("cf.pg.public.customers") == ("cf.pg", "public", "customers")
    assert dlq_topic("cf.pg.public.customers") == "cf.pg.public.customers.dlq"
    assert dlq_topic("x.dlq") == "x.dlq"
    assert outbox_topic("order") == "outbox.event.order"
    assert domain_topic("orders", "order") == "domain.orders.order"


@pytest.mark.parametrize(
    "build",
    [
        lambda: table_topic("cf", "a.b", "t"),
        lambda: table_topic("cf", "s", ""),
        lambda: table_topic("c f", "s", "t"),
        lambda: outbox_topic("x; DROP TABLE canary; --"),
        lambda: domain_topic("d", "ünicode"),
        lambda: table_topic("p" * 250, "s", "t"),
        lambda: parse_table_topic("no-dots"),
    ],
)
def test_bad_names_fail_loudly(build: object) -> None:
    with pytest.raises(ConfigError):
        build()  # type: ignore[operator]  # parametrized callables
