"""Where verify learns which tables to compare: the shipping domain's declarative mappings.

Reading the same ``TableMapping`` s the workers materialize means the oracle can never drift
from the pipeline's idea of what a sink table holds.
"""

from __future__ import annotations

from streams.sinks.mapping import TableMapping, validate_mappings


def shipping_mappings(schema: str = "public") -> list[TableMapping]:
    """The validated mappings of the shipping service (``ConfigError`` if they are inconsistent)."""
    from streams.domains.shipping import shipping_mappings as declared

    return list(validate_mappings(declared(schema)).values())
