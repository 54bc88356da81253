"""Where verify learns which tables to compare: the shipping domain's declarative mappings.

Reading the same ``TableMapping`` s the workers materialize means the oracle can never drift
from the pipeline's idea of what a sink table holds.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.sinks.mapping import TableMapping, validate_mappings, with_extra_columns


def shipping_mappings(
    schema: str = "public", extra_columns: Mapping[str, Mapping[str, str]] | None = None
) -> list[TableMapping]:
    """The validated mappings of the shipping service (``ConfigError`` if they are inconsistent),
    with the same ``extra_columns`` the workers were given (``PipelineSettings.extra_columns``)."""
    from streams.domains.shipping import shipping_mappings as declared

    return list(validate_mappings(with_extra_columns(declared(schema), extra_columns or {})).values())
