"""verify's enrichment check: order_view's customer name/email must equal customer_directory's."""

from __future__ import annotations

import asyncio

import pytest

from streams.demo.project import shipping_mappings, shipping_sink
from streams.settings import Settings
from streams.sinks import conninfo_from
from streams.verify.compare import Divergence, TableResult
from streams.verify.enrichment import check_lookup, lookups_of
from streams.verify.report import divergence_lines
from tests.integration.streams.test_sources import Conn

pytestmark = pytest.mark.integration
POS = b"\x01"


async def _create(settings: Settings, schema: str) -> None:
    sink = shipping_sink(conninfo_from(settings.sink_postgres), "it-enrich", schema)
    await sink.ensure_schema()
    await sink.close()


def test_enrichment_mismatches_are_reported_and_consistent_rows_pass(
    settings: Settings, sink: Conn, schema: str
) -> None:
    asyncio.run(_create(settings, schema))
    [(order_view, lookup)] = lookups_of(shipping_mappings(schema))
    assert (order_view.sink_schema, order_view.sink_table, lookup.table) == (
        schema,
        "order_view",
        "customer_directory",
    )

    def check_enrichment(sink: Conn, schema: str) -> TableResult:
        return check_lookup(sink, order_view, lookup)

    cd, ov = f'"{schema}".customer_directory', f'"{schema}".order_view'
    sink.execute(
        f"INSERT INTO {cd} (customer_id, email, first_name, last_name, _cf_position) VALUES"
        " (1, 'ada@x.test', 'Ada', 'Lovelace', %s), (2, 'bob@x.test', 'Bob', 'Ó Briain', %s)",
        (POS, POS),
    )
    sink.execute(
        f"INSERT INTO {ov} (order_id, customer_id, customer_name, customer_email, _cf_position) VALUES"
        " (10, 1, 'Ada Lovelace', 'ada@x.test', %s),"  # consistent
        " (11, 2, 'Bob Ó Briain', 'old-bob@x.test', %s),"  # stale email
        " (12, 3, NULL, NULL, %s)",  # customer unknown to the directory: NULLs are right
        (POS, POS, POS),
    )
    result = check_enrichment(sink, schema)
    assert (result.source_rows, result.divergent, result.ok) == (3, 1, False)
    [bad] = result.keys
    assert (bad.key, bad.kind) == (("11",), Divergence.ENRICHMENT)
    assert (
        "customer_id 2: customer_email='old-bob@x.test' but customer_directory has 'bob@x.test'"
        in bad.columns[0]
    )
    assert any("key=11" in line and "old-bob@x.test" in line for line in divergence_lines([result], 20))

    sink.execute(f"UPDATE {ov} SET customer_email = 'bob@x.test' WHERE order_id = 11")
    sink.execute(f"UPDATE {ov} SET customer_name = 'Ghost' WHERE order_id = 12")
    result = check_enrichment(sink, schema)
    assert [k.key for k in result.keys] == [("12",)]  # a name where the directory has no customer
    sink.execute(f"UPDATE {ov} SET customer_name = NULL WHERE order_id = 12")
    assert check_enrichment(sink, schema).ok
