"""The per-partition pipeline: decode, transform, publish, materialize, dead-letter."""

from streams.pipeline.deadletter import Poison, dlq_headers, parse_headers
from streams.pipeline.handle import Handler
from streams.pipeline.loop import Backoff, Pipeline, Rebalance
from streams.pipeline.settings import PipelineSettings

__all__ = [
    "Backoff",
    "Handler",
    "Pipeline",
    "PipelineSettings",
    "Poison",
    "Rebalance",
    "dlq_headers",
    "parse_headers",
]
