"""Source positions order events the way the source committed them, in Python and as bytes."""

from __future__ import annotations

import json
import random

import pytest

from streams.cdc import (
    SourceKind,
    SourcePosition,
    binlog_file_index,
    gtid_sequence,
    mysql_position,
    position_of,
    postgres_position,
)
from streams.errors import EnvelopeError


def pg(last_commit: int | None, lsn: int | None, tx: int = 1) -> SourcePosition:
    seq = [None if last_commit is None else str(last_commit), None if lsn is None else str(lsn)]
    return postgres_position({"sequence": json.dumps(seq), "txId": tx, "lsn": lsn})


def test_pg_interleaved_transactions_follow_commit_order_not_raw_lsn() -> None:
    # T1 writes at LSN 90 but commits at 110, after T2 (writes at 95, commits at 100).
    # pgoutput emits T2 first (last commit before it: 50), then T1 (last commit: T2's 100).
    t2_event = pg(50, 95, tx=602)
    t1_event = pg(100, 90, tx=601)
    assert t2_event < t1_event  # raw lsn (95 > 90) would say the opposite
    assert t2_event.to_bytes() < t1_event.to_bytes()


def test_pg_events_within_one_transaction_order_by_lsn() -> None:
    assert pg(100, 120) < pg(100, 121) < pg(130, 125)


def test_pg_snapshot_record_sits_at_the_snapshot_point() -> None:
    snapshot = postgres_position({"sequence": '[null, "500"]', "txId": 9, "snapshot": "true"})
    assert snapshot.parts == (500, 0, 9)
    assert pg(499, 600) < snapshot < pg(500, 400) < pg(510, 520)


def test_pg_streamed_event_without_last_commit_orders_by_its_lsn() -> None:
    assert pg(None, 500).parts == (500, 500, 1)


def test_pg_sequence_may_arrive_as_list() -> None:
    assert postgres_position({"sequence": ["1", "2"], "txId": None}).parts == (1, 2, 0)


@pytest.mark.parametrize("sequence", ['["1"]', '{"a": 1}', '["x", "2"]'])
def test_pg_bad_sequence(sequence: str) -> None:
    with pytest.raises(EnvelopeError):
        postgres_position({"sequence": sequence})


def test_binlog_rollover_compares_file_index_numerically() -> None:
    assert binlog_file_index("mysql-bin.999999") < binlog_file_index("mysql-bin.1000000")
    last_in_old = mysql_position({"file": "mariadb-bin.999999", "pos": 99_999, "row": 5})
    first_in_new = mysql_position({"file": "mariadb-bin.1000000", "pos": 4, "row": 0})
    assert last_in_old < first_in_new
    assert last_in_old.to_bytes() < first_in_new.to_bytes()
    # As strings the rolled-over name sorts first; the position must not.
    assert "mariadb-bin.1000000" < "mariadb-bin.999999"


def test_binlog_rows_within_one_event() -> None:
    a = mysql_position({"gtid": "0-1-7", "file": "b.000001", "pos": 400, "row": 0})
    b = mysql_position({"gtid": "0-1-7", "file": "b.000001", "pos": 400, "row": 1})
    assert a < b


def test_binlog_coordinates_order_mariadb_and_snapshot_precedes_streaming_at_its_point() -> None:
    # A snapshot record carries no GTID, so binlog coordinates come first (see position.py).
    before = mysql_position({"gtid": "0-1-1000", "file": "b.000090", "pos": 9000, "row": 0})
    snapshot = mysql_position({"file": "b.000090", "pos": 9100, "row": 0, "snapshot": "last"})
    at_point = mysql_position({"gtid": "0-1-1001", "file": "b.000090", "pos": 9100, "row": 0})
    assert before < snapshot < at_point
    assert snapshot.parts == (90, 9100, 0, 0)


@pytest.mark.parametrize(
    ("gtid", "seq"),
    [("0-1-42", 42), ("3E11FA47-71CA-11E1-9E33-C80AA9429562:23", 23), ("uuid:1-99", 99), (None, 0)],
)
def test_gtid_sequence(gtid: str | None, seq: int) -> None:
    assert gtid_sequence(gtid) == seq


def test_binlog_name_without_index_is_rejected() -> None:
    with pytest.raises(EnvelopeError):
        binlog_file_index("binlog")


def test_bytes_roundtrip_and_byte_order_equals_tuple_order() -> None:
    rng = random.Random(5668)
    edges = [0, 1, 255, 256, 2**32, 2**64 - 1]  # byte-boundary values
    positions = [
        SourcePosition(SourceKind.POSTGRES, tuple(rng.choice(edges) for _ in range(3))) for _ in range(300)
    ]
    for p in positions:
        assert SourcePosition.from_bytes(p.to_bytes()) == p
        assert len(p.to_bytes()) == 1 + 3 * 8
    assert sorted(positions) == sorted(positions, key=lambda p: p.to_bytes())


def test_position_of_dispatches_on_connector() -> None:
    assert position_of({"connector": "mysql", "file": "b.000002", "pos": 1}).kind is SourceKind.MYSQL
    assert position_of({"connector": "postgresql", "sequence": '[null, "1"]'}).kind is SourceKind.POSTGRES


def test_out_of_range_parts_and_garbage_bytes_are_rejected() -> None:
    with pytest.raises(ValueError):
        SourcePosition(SourceKind.POSTGRES, (-1,))
    with pytest.raises(ValueError):
        SourcePosition.from_bytes(b"\x01\x00")
    assert str(SourcePosition(SourceKind.MYSQL, (1, 2))) == "mysql:1/2"
    assert SourcePosition.from_bytes(b"\x02" + bytes(8)).kind is SourceKind.MYSQL_GTID  # old sinks


@pytest.mark.parametrize(
    "sequence",
    [
        '["779747608","780121008"]',  # what Debezium writes
        '[null,"780121008"]',
        '["1", "2"]',  # json.dumps' spacing
        "[null, null]",
        '["007","08"]',
        "[1, 2]",  # not the fast shape: through JSON
        '[ "1","2"]',
        '["\u0661","2"]',  # non-ASCII digits: int() reads them, so must the fallback
        '["18446744073709551615","1"]',
    ],
)
def test_pg_sequence_text_reads_like_its_json(sequence: str) -> None:
    """Debezium's sequence shape skips json.loads: the same position as the decoded list gives."""
    source = {"sequence": sequence, "txId": 5}
    assert postgres_position(source) == postgres_position({**source, "sequence": json.loads(sequence)})


@pytest.mark.parametrize(
    "sequence", ['["1","2","3"]', '["-1","2"]', '["18446744073709551616","1"]', '["1","2"]x', "[null]"]
)
def test_pg_sequence_fast_shape_rejects_what_json_rejects(sequence: str) -> None:
    with pytest.raises((EnvelopeError, ValueError)):
        postgres_position({"sequence": sequence})


def test_connector_name_is_case_insensitive() -> None:
    assert position_of({"connector": "PostgreSQL", "sequence": '[null, "1"]'}).kind is SourceKind.POSTGRES
    assert position_of({"connector": "MariaDB", "file": "b.000002", "pos": 1}).kind is SourceKind.MYSQL


def test_last_commit_lsn_reads_the_sequence_and_never_raises() -> None:
    from streams.cdc.position import last_commit_lsn

    assert last_commit_lsn({"sequence": '["779747608","780121008"]'}) == 779747608
    assert last_commit_lsn({"sequence": '[null,"780121008"]'}) is None
    assert last_commit_lsn({"sequence": ["12", "13"]}) == 12
    assert last_commit_lsn({}) is None
    assert last_commit_lsn({"sequence": "not json"}) is None
    assert last_commit_lsn({"sequence": '["x","1"]'}) is None


def test_position_text_is_the_kind_then_every_part_joined_by_slashes() -> None:
    """Domain event ids hash this text: it must never change (checked against its definition)."""
    rng = random.Random(3)
    for _ in range(500):
        kind = rng.choice(list(SourceKind))
        parts = tuple(rng.choice([0, 1, 2**64 - 1, rng.randrange(2**40)]) for _ in range(rng.randrange(0, 6)))
        expected = f"{kind.name.lower()}:" + "/".join(str(p) for p in parts)
        assert str(SourcePosition(kind, parts)) == expected
    assert str(SourcePosition(SourceKind.POSTGRES, (10, 0, 7))) == "postgres:10/0/7"


def test_streamed_postgres_position_is_the_constructors() -> None:
    """A streamed event's position skips the frozen ``__init__`` (per event): the same object."""
    import dataclasses

    p = pg(100, 120, tx=7)
    built = SourcePosition(SourceKind.POSTGRES, (100, 120, 7))
    assert p == built
    assert hash(p) == hash(built)
    assert vars(p) == vars(built)
    assert p.to_bytes() == built.to_bytes()
    assert str(p) == str(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.parts = (1, 2, 3)  # type: ignore[misc]
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        pg(2**64, 120)
    # The sequence memo: one text object read again gives the same parts; another text, its own.
    source = {"sequence": json.dumps(["5", "6"]), "txId": 1}
    assert postgres_position(source) == postgres_position(source) == pg(5, 6)
    assert postgres_position({**source, "sequence": json.dumps(["7", "8"])}) == pg(7, 8)
    with pytest.raises(EnvelopeError):
        postgres_position({**source, "sequence": ""})
