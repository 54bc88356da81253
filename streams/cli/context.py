"""What every command receives from the root callback: lazily built settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import typer

from streams.settings import Settings, load_settings


@dataclass
class CliState:
    overrides: dict[str, dict[str, object]] = field(default_factory=dict)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(**self.overrides)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings for this invocation (built once, on first use)."""
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        state = CliState()
        ctx.find_root().obj = state
    return state.settings
