"""The demo's project: ``tables.toml`` (what the shipping service materializes), the transforms
of the customers table and the orders outbox, and the contracts they check. Built only on
``streams.project``, the interface a user's project uses."""

from collections.abc import Mapping
from pathlib import Path

from streams.project import HandlerRegistry, load_transforms
from streams.project.resolve import ProjectTables
from streams.project.tables import load_tables
from streams.sinks import AsyncPostgresSink, TableMapping
from streams.sinks.mapping import validate_mappings, with_extra_columns

TABLES = Path(__file__).parent / "tables.toml"
CUSTOMERS_TABLE, ORDERS_TABLE = "customer_directory", "order_view"


def shipping_mappings(
    schema: str = "public", extra_columns: Mapping[str, Mapping[str, str]] | None = None
) -> list[TableMapping]:
    """The demo's declared tables as sink mappings (its tables are static: no event needed)."""
    tables = ProjectTables(load_tables(TABLES).tables, schema)
    declared = with_extra_columns(tables.static_mappings(), extra_columns or {})
    return list(validate_mappings(declared).values())


def shipping_sink(conninfo: str, group: str, schema: str = "public") -> AsyncPostgresSink:
    """A sink of the demo's tables (scripts and tests; the worker builds its own from settings)."""
    return AsyncPostgresSink(conninfo, shipping_mappings(schema), group, control_schema=schema)


def demo_registry() -> HandlerRegistry:
    """The demo's transforms, registered as the worker registers them (from the tables file)."""
    return load_transforms(load_tables(TABLES).transforms, TABLES.parent)
