"""The shipping service's sink: the generic PostgreSQL materializer plus ``order_view`` enrichment.

The enrichment statement joins the plan of ``flush_steps`` so rows, enrichment, ledger and
offsets still commit in one transaction (a crash in between leaves nothing half-applied).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import psycopg

from streams.domains.shipping.enrich import enrich_ddl, enrich_sql, touched
from streams.domains.shipping.mappings import CUSTOMERS_TABLE, ORDERS_TABLE, shipping_mappings
from streams.sinks import AsyncPostgresSink, FlushResult
from streams.sinks.classify import Failure, classify, unavailable
from streams.sinks.flush import Step, flush_steps
from streams.sinks.mapping import with_extra_columns
from streams.sinks.postgres import SCHEMA_LOCK_SQL


class ShippingSink(AsyncPostgresSink):
    def __init__(
        self,
        conninfo: str,
        consumer_group: str,
        schema: str = "public",
        extra_columns: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        mappings = with_extra_columns(shipping_mappings(schema), extra_columns or {})
        super().__init__(conninfo, mappings, consumer_group, control_schema=schema)
        self.schema = schema

    async def ensure_schema(self, audit: bool = False) -> None:
        await super().ensure_schema(audit)
        # Under the same lock as the tables' DDL: concurrent starts must not race on it either.
        ddl = [SCHEMA_LOCK_SQL, *enrich_ddl(self.schema, ORDERS_TABLE)]
        steps = [Step(s, (), False) for s in ddl]
        try:
            await self._run(steps)
        except psycopg.Error as exc:
            raise unavailable(exc, "enrichment schema setup") from exc

    def _plan(self) -> Generator[Step, list[Any], FlushResult]:
        orders: list[tuple[object, ...]] = []
        customers: list[tuple[object, ...]] = []
        for w in self.batch.writes:
            (orders if w.mapping.sink_table == ORDERS_TABLE else customers).append(w.key)
        result = yield from flush_steps(self.batch, self.consumer_group, self.control_schema)
        if orders or customers:
            query = enrich_sql(self.schema, ORDERS_TABLE, CUSTOMERS_TABLE)
            yield Step(query, [touched(orders), touched(customers)], fetch=False)
        return result

    async def flush(self) -> FlushResult:
        """Like the base flush, with the enrichment in the same transaction."""
        try:
            result = await self._run(self._plan())
        except psycopg.Error as exc:
            if classify(exc) is Failure.ROW:
                raise await self._isolate(exc) from exc
            raise unavailable(exc, "flush") from exc
        return self.committed(result)
