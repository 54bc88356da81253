"""User-declared invariants of the read model: queries that return the rows breaking a rule.

Declared in the tables file next to the tables they are about, and checked on the sink by
``changefeed verify invariants``::

    [[invariants]]
    name = "order total equals its lines"
    key_columns = 1        # leading result columns naming the violating row (default 1)
    sql = \"\"\"
    SELECT o.order_id, o.total_cents, sum(l.quantity * l.unit_price_cents)
    FROM {schema}.order_view o JOIN {schema}.order_lines l USING (order_id)
    GROUP BY o.order_id, o.total_cents
    HAVING o.total_cents <> sum(l.quantity * l.unit_price_cents)
    \"\"\"

Every row the query returns is a violation. ``{schema}`` is the sink schema, substituted as a
quoted identifier; it is the only placeholder, so a literal brace is written twice (``'{{}}'``).
The query runs in a read-only transaction: it can only read.
"""

from __future__ import annotations

import string
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

PLACEHOLDERS = frozenset({"schema"})


class InvariantSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1)]
    sql: Annotated[str, Field(min_length=1)]
    key_columns: Annotated[int, Field(ge=1)] = 1

    @field_validator("sql")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        """Fail at load, naming the fix, rather than at the first check round."""
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            msg = f"{exc}: write a literal brace twice ({{{{ or }}}}); {{schema}} is the sink schema"
            raise ValueError(msg) from exc
        unknown = sorted(fields - PLACEHOLDERS)
        if unknown:
            names = ", ".join("{" + f + "}" for f in unknown)
            msg = f"unknown placeholder {names}: only {{schema}} is substituted; write a literal brace twice"
            raise ValueError(msg)
        return value


def _unique_names(invariants: tuple[InvariantSpec, ...]) -> tuple[InvariantSpec, ...]:
    names = [i.name for i in invariants]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        msg = f"invariant names must be unique: {', '.join(twice)} declared twice"
        raise ValueError(msg)
    return invariants


Invariants = Annotated[tuple[InvariantSpec, ...], AfterValidator(_unique_names)]
