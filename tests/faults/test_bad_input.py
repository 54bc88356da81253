"""B1, B2: poison bytes produced to a real change topic while the load runs.

Every injected record must reach ``<topic>.dlq`` with its headers (error class, message, source
topic, partition, offset), nothing else may be dead-lettered or lost, and an unknown schema id
must be dead-lettered within a bounded time instead of being retried forever.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from streams.codecs.wire import HEADER_SIZE
from tests.faults.crafting import (
    CUSTOMERS_TOPIC,
    Message,
    Recoder,
    dead_letters,
    plain_json,
    read_topic,
    truncated,
    unknown_schema_id,
    wrong_magic,
)
from tests.faults.pipeline import FaultPipeline, fault_pipeline
from tests.polling import poll

__all__ = ["fault_pipeline"]
APPLY_TIMEOUT_S = 180.0
# B2: an unknown id costs one registry call per TTL (codecs/schemas.py); far below this bound.
DEAD_LETTER_BOUND_S = 120.0


@pytest.fixture
def recoder(fault_pipeline: FaultPipeline) -> Iterator[Recoder]:
    r = Recoder(fault_pipeline.settings)
    yield r
    r.close()


def _sample(fp: FaultPipeline) -> Message:
    """A real, well-formed change event (value longer than a header) from the customers topic."""
    for m in read_topic(fp.settings, CUSTOMERS_TOPIC):
        if m.value is not None and m.key is not None and len(m.value) > HEADER_SIZE + 8:
            return m
    raise AssertionError(f"no change event on {CUSTOMERS_TOPIC}")


def _inject_during_load(
    fp: FaultPipeline, recoder: Recoder, poison: list[bytes], numbers: dict[str, Any]
) -> tuple[list[dict[str, str]], float]:
    """Run load, inject ``poison`` mid-run, converge; the injected records' dead letters."""
    sample = _sample(fp)
    dlq_before = fp.dlq_counts()
    with fp.workers() as workers:
        workers.start_one()
        load = fp.start_load(rate=20, duration_s=30)
        poll(lambda: load.writes >= 100, 60, "the load to be under way")
        sent_at = time.monotonic()
        injected = recoder.send_all(CUSTOMERS_TOPIC, [(sample.partition, sample.key, p) for p in poison])
        wanted = {(str(p), str(o)) for p, o in injected}

        def ours() -> list[dict[str, str]]:
            letters = dead_letters(fp.settings, CUSTOMERS_TOPIC)
            return [h for h in letters if (h.get("source_partition"), h.get("source_offset")) in wanted]

        poll(lambda: len(ours()) == len(poison), DEAD_LETTER_BOUND_S, "every injected record's dead letter")
        seconds = round(time.monotonic() - sent_at, 1)
        report = load.result(120)
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
        workers.check_alive()
        letters = ours()
        numbers.update(
            {
                "injected": len(poison),
                "dead_lettered": len(letters),
                "seconds_to_dead_letter": seconds,
                "load_writes": report.tally.total,
            }
        )
        fp.oracle(numbers, dlq_before=dlq_before, injected_dead_letters=len(poison))
    for h in letters:
        assert h["source_topic"] == CUSTOMERS_TOPIC
        assert h["error_class"]
        assert h["error_message"]
        assert h["source_partition"].isdigit()
        assert h["source_offset"].isdigit()
    return letters, seconds


@pytest.mark.scenario("B1")
def test_truncated_bodies_are_dead_lettered_with_headers_and_nothing_else_is_lost(
    fault_pipeline: FaultPipeline, recoder: Recoder, scenario_numbers: dict[str, Any]
) -> None:
    sample = _sample(fault_pipeline)
    assert sample.value is not None
    poison = [truncated(sample.value) for _ in range(100)]
    letters, _ = _inject_during_load(fault_pipeline, recoder, poison, scenario_numbers)
    classes = {h["error_class"] for h in letters}
    scenario_numbers["error_classes"] = sorted(classes)
    assert classes == {"AvroBodyError"}


@pytest.mark.scenario("B2")
def test_unknown_id_wrong_magic_and_json_are_dead_lettered_in_bounded_time(
    fault_pipeline: FaultPipeline, recoder: Recoder, scenario_numbers: dict[str, Any]
) -> None:
    sample = _sample(fault_pipeline)
    assert sample.value is not None
    kinds = {
        "unknown_id": [unknown_schema_id(sample.value, 2_000_000_000 + i) for i in range(34)],
        "wrong_magic": [wrong_magic(sample.value, 1 + i % 255) for i in range(33)],
        "plain_json": [plain_json({"id": i, "email": f"j{i}@faults.test"}) for i in range(33)],
    }
    poison = [p for batch in kinds.values() for p in batch]
    letters, seconds = _inject_during_load(fault_pipeline, recoder, poison, scenario_numbers)
    by_class: dict[str, int] = {}
    for h in letters:
        by_class[h["error_class"]] = by_class.get(h["error_class"], 0) + 1
    scenario_numbers["error_classes"] = by_class
    assert by_class == {"UnknownSchemaError": 34, "WireFormatError": 66}
    assert seconds < DEAD_LETTER_BOUND_S
