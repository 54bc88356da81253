"""What the pipeline consumes and how it batches, as a settings section (env ``CHANGEFEED_PIPELINE__*``).

Kept beside the pipeline until the lead folds it into ``streams.settings.Settings`` (this
session may not edit that module); built once at the CLI edge like ``Settings``.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHANGEFEED_PIPELINE__", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    # The demo's captured tables and its order outbox; everything else the connectors emit is
    # ignored by not subscribing (order_lines is not materialized yet).
    topics: tuple[str, ...] = ("customers.public.customers", "orders.orders.orders", "outbox.event.order")
    # Schema of the shipping tables and their control tables (tests use one schema each).
    sink_schema: str = "public"
    # One flush per poll: up to this many records across the assigned partitions. Larger
    # batches amortize the transaction; 5000 keeps one flush well under a second.
    max_batch: int = 5000
    # How long a poll waits for records; bounds latency at low load.
    poll_timeout_ms: int = 200
    # Back-off for transient failures (sink, registry or Kafka down): doubles up to the max.
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    # Partitions for the DLQ and domain topics this worker creates when they are missing.
    created_topic_partitions: int = 1
    publish_domain_events: bool = True
