"""Consistency tokens: format, parse, malformed input, per-domain comparison."""

from __future__ import annotations

import pytest

from streams.consistency.token import (
    Kind,
    TokenError,
    format_token,
    lsn_text,
    mariadb_token,
    parse_lsn,
    parse_token,
    postgres_token,
    reached,
)


def test_postgres_round_trip() -> None:
    t = postgres_token("customers", 7301234567890123456, 0x1_0000_00A8)
    text = format_token(t)
    assert text == "cf1:customers:pg:7301234567890123456:1/A8"
    assert parse_token(text) == t
    assert t.position == {0: 0x1_0000_00A8}


def test_mariadb_round_trip_keeps_every_domain() -> None:
    t = mariadb_token("orders", 1, "0-1-1128,2-7-5")
    assert t.position == {0: 1128, 2: 5}
    assert parse_token(str(t)) == t
    assert str(t) == "cf1:orders:mariadb:1:0-1-1128,2-7-5"


def test_lsn_text_matches_postgres_notation() -> None:
    assert lsn_text(143573720) == "0/88EC2D8"
    assert parse_lsn("0/88EC2D8") == 143573720
    assert parse_lsn("FFFFFFFF/FFFFFFFF") == 2**64 - 1


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "5 ':'-separated"),
        ("cf2:customers:pg:1:0/1", "unsupported token version"),
        ("cf1:customers:oracle:1:0/1", "unknown source kind"),
        ("cf1:customers:pg:-1:0/1", "server id"),
        ("cf1:customers:pg:1:0x10", "not a PostgreSQL LSN"),
        ("cf1:customers:pg:1:123456789/0", "not a PostgreSQL LSN"),
        ("cf1:orders:mariadb:1:0-1", "not a MariaDB GTID"),
        ("cf1:orders:mariadb:1:0-1-5,0-1-6", "named twice"),
        ("cf1:bad name:pg:1:0/1", "source name"),
        ("cf1:a:b:c:d:e", "5 ':'-separated"),
        ("x" * 5000, "at most 4096"),
    ],
)
def test_malformed_tokens_say_why(text: str, why: str) -> None:
    with pytest.raises(TokenError, match=why):
        parse_token(text)


def test_reached_compares_per_domain() -> None:
    wanted = mariadb_token("orders", 1, "0-1-10,1-1-3").position
    assert reached({0: 10, 1: 3}, wanted)
    assert reached({0: 11, 1: 9, 5: 1}, wanted)
    assert not reached({0: 9, 1: 9}, wanted)
    assert not reached({0: 100}, wanted)  # domain 1 unknown: not applied
    assert not reached({}, postgres_token("c", 1, 5).position)
    assert reached({0: 5}, postgres_token("c", 1, 5).position)


def test_kind_values_are_the_token_words() -> None:
    assert [k.value for k in Kind] == ["pg", "mariadb"]
