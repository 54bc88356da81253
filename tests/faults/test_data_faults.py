"""K8, S1, S3, S4: stale copies, a column added mid-run, TOASTed values, deletes and late upserts.

Each scenario writes its own customers (a unique email tag), runs the pipeline's workers on the
private fault stack and ends with the oracle (source ≡ sink, 0 regressions, no dead letters).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from streams.demo.project import shipping_mappings
from streams.sinks import UNAVAILABLE_VALUE, conninfo_from
from streams.verify import VerifyOptions, open_databases, verify_wait
from tests.faults.crafting import (
    CUSTOMERS_TOPIC,
    Recoder,
    first_events,
    insert_customers,
    ledger_count,
    ledger_mark,
    read_topic,
    sink_rows,
)
from tests.faults.pipeline import FaultPipeline, fault_pipeline
from tests.polling import poll

__all__ = ["fault_pipeline"]
KEYS = 1000
APPLY_TIMEOUT_S = 180.0  # 2 shared cores; tests/faults/README.md sets no latency bound here


@pytest.fixture
def source(fault_pipeline: FaultPipeline) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(conninfo_from(fault_pipeline.settings.source_postgres), autocommit=True) as c:
        yield c


@pytest.fixture
def sink(fault_pipeline: FaultPipeline) -> Iterator[psycopg.Connection[Any]]:
    with fault_pipeline.sink() as c:
        yield c


@pytest.fixture
def recoder(fault_pipeline: FaultPipeline) -> Iterator[Recoder]:
    r = Recoder(fault_pipeline.settings)
    yield r
    r.close()


def _tag(sid: str) -> str:
    return f"{sid.lower()}-{uuid.uuid4().hex[:8]}"


def _restage(recoder: Recoder, found: dict[int, Any]) -> list[tuple[int | None, bytes | None, bytes | None]]:
    """Re-encoded copies of ``found`` (same writer schema, same key, same partition)."""
    out: list[tuple[int | None, bytes | None, bytes | None]] = []
    for m in found.values():
        assert m.value is not None
        out.append((m.partition, m.key, recoder.reencode(m.value, recoder.decode(m.value))))
    return out


@pytest.mark.scenario("K8")
def test_stale_copies_of_earlier_events_are_rejected_and_ledgered(
    fault_pipeline: FaultPipeline,
    source: psycopg.Connection[Any],
    sink: psycopg.Connection[Any],
    recoder: Recoder,
    scenario_numbers: dict[str, Any],
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    dlq_before = fp.dlq_counts()
    with fp.workers() as workers:
        workers.start_one()
        ids = insert_customers(source, _tag("K8"), KEYS)
        source.execute("UPDATE public.customers SET phone = 'k8-newer' WHERE id = ANY(%s)", [ids])
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
        poll(
            lambda: (
                sink.execute(
                    "SELECT count(*) FROM customer_directory"
                    " WHERE customer_id = ANY(%s) AND phone = 'k8-newer'",
                    [ids],
                ).fetchone()[0]
                == KEYS
            ),
            APPLY_TIMEOUT_S,
            "the newer events to be applied",
        )
        found = first_events(recoder, read_topic(fp.settings, CUSTOMERS_TOPIC), set(ids), "c")
        assert len(found) == KEYS, f"only {len(found)} insert events of {KEYS} keys on the topic"
        before, mark, audit = sink_rows(sink, ids), ledger_mark(sink), fp.audit_mark()
        injected = recoder.send_all(CUSTOMERS_TOPIC, _restage(recoder, found))
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
        ledgered = poll(
            lambda: ledger_count(sink, ids, mark) == KEYS or None, 60, "the ledger entries"
        ) and ledger_count(sink, ids, mark)
        after = sink_rows(sink, ids)
        workers.check_alive()
        numbers.update(
            {
                "keys": KEYS,
                "stale_injected": len(injected),
                "ledgered_stale": ledgered,
                "rows_changed": sum(1 for a, b in zip(before, after, strict=True) if a != b),
                "sink_writes_after_injection": fp.audit_writes(audit),
            }
        )
        assert numbers["rows_changed"] == 0
        assert numbers["sink_writes_after_injection"] == 0
        fp.oracle(numbers, dlq_before=dlq_before)


@pytest.mark.scenario("S1")
def test_column_added_mid_run_registers_a_version_and_flows_where_mapped(
    fault_pipeline: FaultPipeline,
    source: psycopg.Connection[Any],
    sink: psycopg.Connection[Any],
    scenario_numbers: dict[str, Any],
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    column = f"s1_note_{uuid.uuid4().hex[:6]}"
    extra = {"public.customers": {column: column}}
    subject = f"{CUSTOMERS_TOPIC}-value"
    registry = httpx.Client(base_url=fp.settings.registry.url, timeout=10)
    versions_before = registry.get(f"/subjects/{subject}/versions").json()
    dlq_before = fp.dlq_counts()
    with fp.workers() as workers:
        w = workers.start_one()
        load = fp.start_load(rate=20, duration_s=40, mix="60:35:5")
        poll(lambda: load.writes >= 100, 60, "the load to be under way")
        source.execute(f"ALTER TABLE public.customers ADD COLUMN {column} text NULL")  # mid-run
        unmapped = insert_customers(source, _tag("S1a"), 50, {column: "written before it was mapped"})
        new_versions = poll(
            lambda: [
                v for v in registry.get(f"/subjects/{subject}/versions").json() if v not in versions_before
            ],
            90,
            "a new schema version of the customers value",
        )
        # The running worker (static mappings) ignores the new field: no failure, keeps applying.
        poll(lambda: fp.lag() == 0 or None, APPLY_TIMEOUT_S, "the unmapped column's events")
        workers.check_alive()
        assert "Traceback" not in w.text()
        # Map it (PipelineSettings.extra_columns): the sink adds the column at startup.
        w = workers.restart(w, env={"CHANGEFEED_PIPELINE__EXTRA_COLUMNS": _json(extra)})
        source.execute(f"UPDATE public.customers SET {column} = NULL WHERE id = ANY(%s)", [unmapped])
        mapped = insert_customers(source, _tag("S1b"), 50, {column: "Zoë 🚀 mapped"})
        source.execute(f"UPDATE public.customers SET {column} = 'v-' || id WHERE id = ANY(%s)", [mapped[:25]])
        load.result(120)
        want = dict(
            source.execute(
                f"SELECT id, {column} FROM public.customers WHERE id = ANY(%s)", [mapped]
            ).fetchall()
        )

        def mapped_equal() -> int:
            got = dict(
                sink.execute(
                    f"SELECT customer_id, {column} FROM customer_directory WHERE customer_id = ANY(%s)",
                    [mapped],
                ).fetchall()
            )
            return sum(1 for k, v in want.items() if got.get(k) == v)

        # Polled on the rows themselves: lag 0 alone can be read before capture published them.
        poll(lambda: mapped_equal() == len(mapped), APPLY_TIMEOUT_S, "the mapped column in the sink")
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
        status = httpx.get(f"{fp.settings.connect.url}/connectors/customers/status", timeout=10).json()
        states = [status["connector"]["state"], *(t["state"] for t in status["tasks"])]
        with open_databases(fp.settings) as dbs:
            extended = verify_wait(dbs, shipping_mappings("public", extra), VerifyOptions(), 60)
        workers.check_alive()
        numbers.update(
            {
                "new_versions": new_versions,
                "connector_states": "/".join(states),
                "mapped_rows_equal": mapped_equal(),
                "verify_with_new_column": "PASS" if all(r.ok for r in extended) else "FAIL",
            }
        )
        assert set(states) == {"RUNNING"}
        assert numbers["mapped_rows_equal"] == len(mapped) == 50
        assert all(r.ok for r in extended), extended
        fp.oracle(numbers, dlq_before=dlq_before)


@pytest.mark.scenario("S3")
def test_toasted_column_survives_updates_of_another_column(
    fault_pipeline: FaultPipeline,
    source: psycopg.Connection[Any],
    sink: psycopg.Connection[Any],
    recoder: Recoder,
    scenario_numbers: dict[str, Any],
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    assert any(c.name == "bio" for c in shipping_mappings()[0].columns), "bio is not mapped"
    dlq_before = fp.dlq_counts()
    with fp.workers() as workers:
        workers.start_one()
        tag = _tag("S3")
        with source.transaction(), source.cursor() as cur:  # one transaction, 1,000 rows
            cur.executemany(
                "INSERT INTO public.customers (email, first_name, last_name, bio)"
                " VALUES (%s, 'Large', 'Text', %s)",
                [(f"{tag}-{i}@faults.test", secrets.token_hex(8192)) for i in range(KEYS)],
            )
        ids = [
            int(r[0])
            for r in source.execute(
                "SELECT id FROM public.customers WHERE email LIKE %s", [f"{tag}-%"]
            ).fetchall()
        ]
        assert len(ids) == KEYS
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
        source.execute("UPDATE public.customers SET phone = 's3-updated' WHERE id = ANY(%s)", [ids])
        updated = (
            "SELECT count(*) FROM customer_directory WHERE customer_id = ANY(%s) AND phone = 's3-updated'"
        )
        poll(lambda: sink.execute(updated, [ids]).fetchone()[0] == KEYS, APPLY_TIMEOUT_S, "the updates")
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
        decoded = [
            recoder.decode_or_none(m.value) for m in read_topic(fp.settings, CUSTOMERS_TOPIC) if m.value
        ]
        updates = [v for v in decoded if v is not None]
        placeholders = sum(
            1
            for v in updates
            if v["op"] == "u"
            and (v.get("after") or {}).get("id") in set(ids)
            and (v["after"].get("bio") == UNAVAILABLE_VALUE)
        )
        src = dict(
            source.execute("SELECT id, md5(bio) FROM public.customers WHERE id = ANY(%s)", [ids]).fetchall()
        )
        dst = dict(
            sink.execute(
                "SELECT customer_id, md5(bio) FROM customer_directory WHERE customer_id = ANY(%s)"
                " AND phone = 's3-updated'",
                [ids],
            ).fetchall()
        )
        placeholder_values = sink.execute(
            "SELECT count(*) FROM customer_directory WHERE %s IN (bio, email, first_name, last_name, phone,"
            " tier, display_name)",
            [UNAVAILABLE_VALUE],
        ).fetchone()[0]
        workers.check_alive()
        numbers.update(
            {
                "rows": KEYS,
                "bio_bytes": 16384,
                "placeholders_on_topic": placeholders,
                "bio_equal": sum(1 for k, v in src.items() if dst.get(k) == v),
                "sink_placeholder_values": placeholder_values,
            }
        )
        assert placeholders == KEYS, (
            "the updates did not carry the TOAST placeholder (scenario not exercised)"
        )
        assert numbers["bio_equal"] == KEYS
        assert placeholder_values == 0
        fp.oracle(numbers, dlq_before=dlq_before)


@pytest.mark.scenario("S4")
def test_deletes_and_a_late_stale_upsert_do_not_resurrect(
    fault_pipeline: FaultPipeline,
    source: psycopg.Connection[Any],
    sink: psycopg.Connection[Any],
    recoder: Recoder,
    scenario_numbers: dict[str, Any],
) -> None:
    fp, numbers = fault_pipeline, scenario_numbers
    dlq_before = fp.dlq_counts()
    with fp.workers() as workers:
        w = workers.start_one()
        ids = insert_customers(source, _tag("S4"), KEYS)
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
        live = "SELECT count(*) FROM customer_directory WHERE customer_id = ANY(%s)"
        tombs = "SELECT count(*) FROM customer_directory__cf_deleted WHERE customer_id = ANY(%s)"
        poll(lambda: sink.execute(live, [ids]).fetchone()[0] == KEYS, APPLY_TIMEOUT_S, "the inserts")
        source.execute("DELETE FROM public.customers WHERE id = ANY(%s)", [ids])
        # Lag 0 alone can precede Debezium's capture of the deletes: wait for the sink state.
        poll(lambda: sink.execute(tombs, [ids]).fetchone()[0] == KEYS, APPLY_TIMEOUT_S, "the deletes")
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
        assert sink.execute(live, [ids]).fetchone()[0] == 0
        messages = read_topic(fp.settings, CUSTOMERS_TOPIC)
        deleted_keys = {m.key for m in first_events(recoder, messages, set(ids), "d").values()}
        kafka_tombstones = sum(1 for m in messages if m.value is None and m.key in deleted_keys)
        found = first_events(recoder, messages, set(ids), "c")
        mark, audit = ledger_mark(sink), fp.audit_mark()
        injected = recoder.send_all(CUSTOMERS_TOPIC, _restage(recoder, found))  # late, stale upserts
        fp.wait_lag_zero(APPLY_TIMEOUT_S)
        ledgered = poll(lambda: ledger_count(sink, ids, mark) == KEYS or None, 60, "ledger entries")
        workers.check_alive()
        numbers.update(
            {
                "deletes": KEYS,
                "kafka_tombstones": kafka_tombstones,
                "rows_after_delete": sink.execute(live, [ids]).fetchone()[0],
                "sink_tombstones": sink.execute(tombs, [ids]).fetchone()[0],
                "stale_upserts_injected": len(injected),
                "ledgered_stale": KEYS if ledgered else 0,
                "resurrected": sink.execute(live, [ids]).fetchone()[0],
                "sink_writes_after_injection": fp.audit_writes(audit),
                "worker_crashes": sum(1 for x in workers.procs if not x.alive()) + w.text().count("crashed"),
            }
        )
        assert kafka_tombstones == KEYS
        assert numbers["sink_tombstones"] == KEYS
        assert numbers["resurrected"] == 0
        assert numbers["sink_writes_after_injection"] == 0
        assert numbers["worker_crashes"] == 0
        fp.oracle(numbers, dlq_before=dlq_before)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
