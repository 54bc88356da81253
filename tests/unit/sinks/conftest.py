"""Fixtures for the sink unit tests."""

from __future__ import annotations

import pytest

from streams.sinks import Column, TableMapping


@pytest.fixture
def customers() -> TableMapping:
    return TableMapping(
        "public.customers",
        "customer_directory",
        [Column("id", type="bigint"), Column("email"), Column("bio", "about")],
        key=["id"],
    )
