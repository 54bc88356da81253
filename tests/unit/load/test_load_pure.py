"""The load generator's pure parts: rate schedule, mix, key pool, deterministic values."""

from __future__ import annotations

import json
import random

import pytest

from streams.load.data import canonical_json, large_text, money
from streams.load.keys import KeyPool
from streams.load.mix import Mix, WriteOp
from streams.load.rate import RateLimiter
from streams.load.runner import rng_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_operations_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.wait()
    assert clock.now == pytest.approx(100.4)
    assert clock.slept == pytest.approx([0.1] * 4)


def test_rate_limiter_catches_up_after_a_slow_write_without_lowering_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)
    limiter.wait()
    clock.now += 0.35  # one slow write
    for _ in range(3):
        limiter.wait()  # due at 0.1, 0.2, 0.3: already late, no sleeping
    assert clock.slept == []
    limiter.wait()  # due at 0.4, now 0.35
    assert clock.slept == pytest.approx([0.05])


def test_rate_limiter_restarts_the_schedule_after_a_stall_instead_of_bursting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, max_burst_s=1.0, clock=clock, sleep=clock.sleep)
    limiter.wait()
    clock.now += 5.0
    limiter.wait()
    assert limiter.resets == 1
    limiter.wait()
    assert clock.slept == pytest.approx([0.1])


def test_rate_limiter_rejects_non_positive_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


def test_mix_parses_and_samples_by_weight() -> None:
    mix = Mix.parse("70:25:5")
    rng = random.Random(3)
    ops = [mix.choose(rng) for _ in range(10_000)]
    assert 0.67 < ops.count(WriteOp.INSERT) / 10_000 < 0.73
    assert 0.03 < ops.count(WriteOp.DELETE) / 10_000 < 0.07
    assert str(mix) == "70:25:5"


@pytest.mark.parametrize("text", ["70:30", "a:b:c", "0:50:50", "1:2:3:4", "-1:2:3"])
def test_mix_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="mix"):
        Mix.parse(text)


def test_key_pool_is_deterministic_and_prefers_hot_keys() -> None:
    pool = KeyPool(hot_keys=2, hot_fraction=0.9)
    for k in range(1, 101):
        pool.add(k)
    pool.remove(50)
    assert len(pool) == 99
    picks = [pool.pick(random.Random(7)) for _ in range(3)]
    assert picks == [pool.pick(random.Random(7)) for _ in range(3)]
    rng = random.Random(1)
    hot = sum(pool.pick(rng) in (1, 2) for _ in range(1000))
    assert hot > 850
    assert 50 not in {pool.pick(rng) for _ in range(5000)}


def test_key_pool_refuses_to_pick_from_nothing() -> None:
    with pytest.raises(LookupError):
        KeyPool().pick(random.Random(1))


def test_canonical_json_matches_postgres_jsonb_text() -> None:
    # jsonb::text orders keys by byte length, then bytes, and spaces after ':' and ','.
    value = {"bb": [1, "ü"], "a": {"zz": None, "y": True}, "ccc": "x"}
    assert canonical_json(value) == '{"a": {"y": true, "zz": null}, "bb": [1, "ü"], "ccc": "x"}'
    assert json.loads(canonical_json(value)) == value


def test_canonical_json_refuses_floats() -> None:
    with pytest.raises(TypeError):
        canonical_json({"x": 1.5})


def test_generated_values_are_deterministic_for_a_seed() -> None:
    a, b = rng_for(5, "customers"), rng_for(5, "customers")
    assert large_text(a) == large_text(b)
    assert len(large_text(random.Random(1)).encode()) >= 16 * 1024
    assert str(money(random.Random(2))).count(".") == 1
    assert rng_for(5, "orders").random() != rng_for(5, "customers").random()
