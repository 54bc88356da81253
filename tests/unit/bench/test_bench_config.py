"""The benchmark's configuration: private port shift, the JDBC sink's tried configurations, limits' cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import peers, stack
from bench.__main__ import FULL, QUICK, cap_ends


def test_the_port_shift_defaults_to_400_and_is_configurable() -> None:
    assert stack.port_shift({}) == 400
    assert stack.port_shift({"CHANGEFEED_BENCH_PORT_SHIFT": "600"}) == 600
    with pytest.raises(ValueError, match=r"1\.\.20000"):
        stack.port_shift({"CHANGEFEED_BENCH_PORT_SHIFT": "0"})


def test_the_jdbc_sink_gets_its_consumer_overrides_and_the_variant_removes_them() -> None:
    best = peers.jdbc_config(tasks=2)
    assert best["tasks.max"] == "2"
    assert best["consumer.override.max.poll.records"] == "5000"
    default = peers.jdbc_config(peers.JDBC_VARIANTS["jdbc-sink-consumer-defaults"])
    assert not [k for k in default if k.startswith("consumer.override.")]
    assert default["batch.size"] == best["batch.size"]


def test_the_limits_read_a_proportional_prefix_of_every_topic() -> None:
    assert cap_ends({"a": 300_000, "b": 100_000}, 100_000) == {"a": 75_000, "b": 25_000}
    assert cap_ends({"a": 10}, 100) == {"a": 10}


def test_full_mode_replays_at_least_400k_events_and_keeps_the_10_minute_soak() -> None:
    assert FULL.bulk_n >= 400_000
    assert FULL.soak_s >= 600
    assert FULL.reps >= 2
    assert QUICK.budget_s <= 14 * 60


def test_the_bench_refuses_to_start_on_a_disk_too_full_for_it(tmp_path: Path) -> None:
    root = tmp_path / "not-yet" / "bench"  # measured on the filesystem it will be created on
    stack.check_free_disk(root, 0.001)
    with pytest.raises(SystemExit, match="GiB free"):
        stack.check_free_disk(root, 10.0**9)
    assert not root.exists()
