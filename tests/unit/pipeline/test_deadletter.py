"""Dead-letter headers: error class, message, source topic/partition/offset, timestamp."""

from __future__ import annotations

import hashlib

from streams.errors import AvroBodyError, MessageOrigin
from streams.pipeline.deadletter import (
    MAX_MESSAGE,
    Poison,
    bare,
    dlq_headers,
    letter,
    original_headers,
    parse_headers,
    record_size,
    replayable,
)


def poison(error: BaseException, headers: list[tuple[str, bytes]] | None = None) -> Poison:
    return Poison(
        "customers.public.customers", 2, 41, 1_700_000_000_000, b"k", b"\x00\x00", headers or [], error
    )


def test_headers_name_the_error_and_the_source_record() -> None:
    p = poison(AvroBodyError("truncated", MessageOrigin("customers.public.customers", 2, 41)))
    assert p.dlq_topic == "customers.public.customers.dlq"
    why = parse_headers(dlq_headers(p))
    assert why == {
        "error_class": "AvroBodyError",
        "error_message": "truncated (customers.public.customers[2]@41)",
        "source_topic": "customers.public.customers",
        "source_partition": "2",
        "source_offset": "41",
        "source_timestamp": "1700000000000",
    }


def test_original_headers_are_kept_and_long_messages_cut() -> None:
    headers = dlq_headers(poison(ValueError("x" * 10_000), [("eventType", b"OrderPlaced")]))
    assert original_headers(headers) == [("eventType", b"OrderPlaced")]
    assert len(parse_headers(headers)["error_message"]) == MAX_MESSAGE


def test_a_replayed_dead_letter_does_not_stack_old_headers() -> None:
    first = dlq_headers(poison(ValueError("a")))
    again = dlq_headers(poison(ValueError("b"), first))
    assert parse_headers(again)["error_message"] == "b"
    assert len([k for k, _ in again if k == "cf_error_class"]) == 1


def bytes_poison(key: bytes | None, value: bytes | None) -> Poison:
    return Poison(
        "outbox.event.order", 0, 7, 1_700_000_000_000, key, value, [("eventType", b"X")], ValueError("e")
    )


def test_a_record_without_key_and_value_gets_an_empty_value_and_a_marker() -> None:
    letter_ = letter(bytes_poison(None, None), 8 * 1024 * 1024)
    assert (letter_.key, letter_.value, letter_.form) == (None, b"", "null_value")
    assert parse_headers(letter_.headers)["null_value"] == "true"
    assert not replayable(letter_.headers)


def test_a_record_too_large_with_our_headers_keeps_its_head_and_says_so() -> None:
    value = bytes(range(256)) * 40  # 10 KiB
    letter_ = letter(bytes_poison(b"k", value), 8 * 1024)
    assert letter_.form == "truncated"
    assert letter_.value is not None
    assert value.startswith(letter_.value)
    assert record_size(letter_.key, letter_.value, letter_.headers) <= 8 * 1024
    why = parse_headers(letter_.headers)
    assert int(why["truncated"]) == len(value)
    assert why["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert not replayable(letter_.headers)


def test_a_record_that_fits_is_sent_as_it_came() -> None:
    letter_ = letter(bytes_poison(b"k", b"v"), 8 * 1024)
    assert (letter_.key, letter_.value, letter_.form) == (b"k", b"v", "as_is")
    assert replayable(letter_.headers)


def test_the_bare_form_keeps_only_our_headers_and_the_reason() -> None:
    letter_ = bare(bytes_poison(b"k" * 100_000, b"v"), "MessageSizeTooLargeError: x")
    assert (letter_.key, letter_.value) == (None, b"")
    assert original_headers(letter_.headers) == []
    assert parse_headers(letter_.headers)["payload_dropped"] == "MessageSizeTooLargeError: x"
