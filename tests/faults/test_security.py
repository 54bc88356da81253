"""X2: SQL-injection-shaped values and names, byte-exact in the sink; colliding names fail the start.

Values go into the real source table's text columns; names go through mapping extension
(``CHANGEFEED_PIPELINE__EXTRA_COLUMNS``), which creates sink columns with those names. A canary
table in the sink database must survive all of it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from streams.demo.project import shipping_mappings as declared
from streams.errors import ConfigError
from streams.sinks import conninfo_from, validate_mappings
from streams.sinks.mapping import with_extra_columns
from tests.faults.pipeline import FaultPipeline, fault_pipeline
from tests.polling import poll

__all__ = ["fault_pipeline"]
APPLY_TIMEOUT_S = 180.0
DROP = "x; DROP TABLE canary; --"
EVIL_NAMES = {"display_name": DROP, "phone": 'MiXeD "Case" Ünï\'s'}
# Every non-NUL code point of the BMP except surrogates: "binary" that text can carry.
BINARYISH = "".join(chr(c) for c in range(1, 0x10000) if not 0xD800 <= c <= 0xDFFF)
VALUES = [
    {"first_name": DROP, "last_name": "'); DROP TABLE canary; --", "phone": '" OR 1=1 --'},
    {"first_name": 'O\'Brien "quoted" \\ back', "last_name": "MiXeD cAsE", "phone": "$$ $fn$ %s %(x)s"},
    {"first_name": "Zoë 🚀 中文 \u202egnp.exe", "last_name": "עברית ∑", "phone": "\t\r\n\x1b[0m"},
    # 1 MB (10^6 bytes): a 1 MiB value plus the envelope would exceed Kafka's default 1 MiB
    # max.request.size / message.max.bytes, which the stack keeps (see the report).
    {"first_name": "big", "last_name": "bio", "bio": "é" * 500_000},
    {"first_name": "binary", "last_name": "ish", "display_name": BINARYISH},
]
TEXT = ("email", "first_name", "last_name", "phone", "display_name", "bio")


@pytest.fixture
def source(fault_pipeline: FaultPipeline) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(conninfo_from(fault_pipeline.settings.source_postgres), autocommit=True) as c:
        yield c


def test_colliding_names_are_rejected_by_validate_mappings() -> None:
    for extra, needle in [
        ({"public.customers": {"display_name": "email"}}, "both map to 'email'"),
        ({"public.customers": {"display_name": "a" * 63 + "x", "bio": "a" * 63 + "y"}}, "longer than 63"),
        ({"public.customers": {"bio": "_cf_deleted_at"}}, "reserved prefix"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            validate_mappings(with_extra_columns(declared(), extra))
    # Case and quotes are kept exactly (quoted identifiers): these do not collide.
    ok = validate_mappings(with_extra_columns(declared(), {"public.customers": {"bio": "Email"}}))
    assert "Email" in [c.name for c in ok["public.customers"].columns]


@pytest.mark.scenario("X2")
def test_a_worker_with_a_colliding_mapping_refuses_to_start(
    fault_pipeline: FaultPipeline, scenario_numbers: dict[str, Any]
) -> None:
    colliding = json.dumps({"public.customers": {"display_name": "email"}})
    with fault_pipeline.workers(group=f"x2-{uuid.uuid4().hex[:6]}") as workers:
        w = workers.start_one(env={"CHANGEFEED_PIPELINE__EXTRA_COLUMNS": colliding})
        code = w.wait_exit(120)
        text = w.text()
    scenario_numbers["colliding_mapping_exit_code"] = code
    assert code != 0
    assert "ConfigError" in text
    assert "both map to 'email'" in text
    assert "assigned" not in text  # it never joined the group


@pytest.mark.scenario("X2")
def test_injection_shaped_values_and_names_are_stored_byte_exact(
    fault_pipeline: FaultPipeline, source: psycopg.Connection[Any], scenario_numbers: dict[str, Any]
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    extra = {"public.customers": EVIL_NAMES}
    with fp.sink() as sink:
        sink.execute("CREATE TABLE IF NOT EXISTS canary (id integer PRIMARY KEY)")
        sink.execute("INSERT INTO canary VALUES (1) ON CONFLICT DO NOTHING")
    dlq_before = fp.dlq_counts()
    tag = uuid.uuid4().hex[:8]
    mark = fp.end_offsets(fp.topics)
    with fp.workers() as workers:
        workers.start_one(env={"CHANGEFEED_PIPELINE__EXTRA_COLUMNS": json.dumps(extra)})
        ids = []
        for i, v in enumerate(VALUES):
            row = {"email": f"{DROP}'\"-{tag}-{i}@faults.test", **v}
            cols = list(row)
            q = psycopg.sql.SQL("INSERT INTO public.customers ({}) VALUES ({}) RETURNING id").format(
                psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c in cols),
                psycopg.sql.SQL(", ").join(psycopg.sql.Placeholder() * len(cols)),
            )
            ids.append(int(source.execute(q, list(row.values())).fetchone()[0]))  # type: ignore[index]
        # Past the mark: lag is also 0 before capture publishes (or the worker added its columns).
        fp.wait_lag_zero(APPLY_TIMEOUT_S, workers=workers, past=mark)
        cols_sql = ", ".join(TEXT)
        want = source.execute(
            f"SELECT id, {cols_sql}, display_name, phone FROM public.customers"
            " WHERE id = ANY(%s) ORDER BY id",
            [ids],
        ).fetchall()
        with fp.sink() as sink:
            evil = psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(n) for n in EVIL_NAMES.values())
            got = poll(
                lambda: (
                    rows
                    if len(
                        rows := sink.execute(
                            psycopg.sql.SQL(
                                "SELECT customer_id, email, first_name, last_name, phone,"
                                " display_name, bio, {}"
                                " FROM customer_directory WHERE customer_id = ANY(%s) ORDER BY 1"
                            ).format(evil),
                            [ids],
                        ).fetchall()
                    )
                    == len(ids)
                    else None
                ),
                60,
                "the injection-shaped rows",
            )
            canary = sink.execute("SELECT count(*) FROM canary").fetchone()[0]  # type: ignore[index]
        # The extended mapping is checked on this scenario's rows only: rows written before the
        # columns were mapped keep NULL there until their next change (documented behaviour).
        workers.check_alive()
        numbers.update(
            {
                "rows": len(ids),
                "rows_byte_exact": sum(1 for a, b in zip(want, got, strict=True) if tuple(a) == tuple(b)),
                "largest_value_bytes": max(len(str(x).encode()) for r in want for x in r),
                "canary_rows": canary,
            }
        )
        assert canary == 1
        assert numbers["rows_byte_exact"] == len(ids)
        fp.oracle(numbers, dlq_before=dlq_before)
