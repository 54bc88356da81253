"""The test crafter works whatever the sampled topic holds (``make demo`` then ``make test``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.settings import Settings
from tests.integration.streams.helpers import Crafter

pytestmark = pytest.mark.integration


def test_a_sample_with_numeric_and_large_values_crafts_rows_without_them(
    settings: Settings, topic: str, crafter: Crafter
) -> None:
    # What the demo leaves first on the customers topic: a create with a numeric and a large bio.
    key, value = crafter.message(1, 100, "c", credit_limit=Decimal("1234.50"), bio="b" * 100_000)
    crafter.send(topic, key, value, partition=0)
    sampled = Crafter(settings, sample_topic=topic)
    try:
        _, crafted = sampled.message(2, 200, "c")  # failed: Decimal is not JSON serializable
        row = sampled.decoder.decode(crafted)["after"]
    finally:
        sampled.close()
    assert (row["id"], row["email"]) == (2, "c2-200@it.test")
    assert row["credit_limit"] is None
    assert row["bio"] is None
