"""Dead-letter headers: error class, message, source topic/partition/offset, timestamp."""

from __future__ import annotations

from streams.errors import AvroBodyError, MessageOrigin
from streams.pipeline.deadletter import MAX_MESSAGE, Poison, dlq_headers, original_headers, parse_headers


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
