"""The worker's Faust app at module level, for ``faust -A streams.bus.main worker`` and for your
own agents: ``from streams.bus.main import app, domain_events``.

Importing this module reads the settings (environment, ``changefeed.toml``) and loads the
project, exactly as ``changefeed worker`` does; the app hosts the materializer and the bus.
"""

from __future__ import annotations

from typing import Any

from streams.app import hosted_app
from streams.bus.codec import domain_topic
from streams.registry.client import RegistryClient
from streams.settings import load_settings

settings = load_settings()
app = hosted_app(settings, settings.pipeline)
_registry = RegistryClient(settings.registry.url)


def domain_events(*topics: str) -> Any:
    """A topic over these domain topics whose values are typed records (streams.bus.records)."""
    return domain_topic(app, _registry, *topics)
