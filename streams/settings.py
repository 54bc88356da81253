"""One typed settings object for every component, built once at the edge and passed down.

Sources, highest precedence first: CLI flags (applied by the caller via ``model_copy``),
environment variables ``CHANGEFEED_<SECTION>__<FIELD>``, a TOML file (``CHANGEFEED_CONFIG`` or
``./changefeed.toml``), then defaults that work on the local stack. Nothing else in the package
reads ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

LOOPBACK = "127.0.0.1"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StackSettings(_Section):
    """The local no-container stack: where its state lives and how long it may take to start."""

    state_dir: Path = Path(".state")
    # Maven repository and resolved jars; kept apart from state so `down --purge` keeps them.
    cache_dir: Path = Path(".cache")
    # Modest heaps: the whole stack must fit a 2-core/4 GiB budget beside the workers.
    kafka_heap_mb: int = 512
    connect_heap_mb: int = 768
    # Cold JVM starts on 2 cores (Connect scans every plugin jar) take ~30-60 s; leave headroom.
    start_timeout_s: float = 240.0
    stop_timeout_s: float = 30.0


class KafkaSettings(_Section):
    host: str = LOOPBACK
    port: int = 9092
    controller_port: int = 9093
    # Single-node stack: one partition keeps examples ordered; topics are created deliberately.
    default_partitions: int = 1
    # The largest record (bytes, as a batch of one) the broker accepts (its message.max.bytes)
    # and every producer of ours may send: the stack's broker and Connect are configured from
    # it, and the workers' producers and consumers match it (streams/pipeline/clients.py).
    max_message_bytes: int = 8 * 1024 * 1024

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"


class ConnectSettings(_Section):
    host: str = LOOPBACK
    port: int = 8083
    group_id: str = "changefeed-connect"
    # Connect's default 60 s flush interval is the duplicate window after a crash.
    offset_flush_interval_ms: int = 1000
    # Default 300 s would hold a dead worker's tasks unassigned for five minutes.
    scheduled_rebalance_max_delay_ms: int = 10000

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class RegistrySettings(_Section):
    host: str = LOOPBACK
    port: int = 8081
    topic: str = "_schemas"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class DatabaseSettings(_Section):
    """A database server and the administrative login changefeed uses to manage it."""

    host: str = LOOPBACK
    port: int = 5432
    user: str = "changefeed"
    # Local-stack default only; set CHANGEFEED_<DB>__PASSWORD (or the TOML file) for anything real.
    password: SecretStr = SecretStr("changefeed-local")
    database: str = "postgres"


class SourcePostgresSettings(DatabaseSettings):
    """The `customers` service's PostgreSQL (logical decoding on)."""

    port: int = 15432
    database: str = "customers"


class SourceMariaDBSettings(DatabaseSettings):
    """The `orders` service's MariaDB (row binlog with GTID)."""

    port: int = 13306
    database: str = "orders"


class SinkPostgresSettings(DatabaseSettings):
    """The `shipping` service's PostgreSQL, a separate instance so its writes are never decoded."""

    port: int = 15433
    database: str = "shipping"
    # The workers' own login, apart from the admin login above (which verify, prune, `conflicts`
    # and `sink grant` use): no superuser, only USAGE+CREATE on the sink schema and the tables
    # it creates there. Created and granted by `changefeed sink grant` (`services migrate` runs
    # it for the local stack). Unset password: the local stack's generated one, kept in
    # <state_dir>/secrets/sink-secrets.properties; set CHANGEFEED_SINK_POSTGRES__WORKER_PASSWORD
    # for anything real.
    worker_user: str = "changefeed_sink"
    worker_password: SecretStr | None = None


class WorkerSettings(_Section):
    """Faust worker settings fit for fast failover."""

    app_id: str = "changefeed"
    # Faust's default 60 s session timeout is how long a dead worker's partitions stay stuck.
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 3.0
    # How long the broker may hold a fetch that finds nothing new (Kafka's fetch.max.wait.ms, 500
    # by default). aiokafka has one fetch per broker in flight, and leaves out of it a partition
    # whose fetched records still wait to be processed: while a fetch of only the quiet
    # partitions waits, a busy partition's new records wait with it. At 500 ms a run at half
    # load could settle into p99 ≈ 1–1.5 s (streams/pipeline/README.md, "Latency: the fetch wait").
    fetch_max_wait_ms: int = Field(default=100, ge=0, le=500)
    # SIGTERM/SIGINT: the process is gone within this. The pipeline's stop gets 3/4 of it: half
    # of that for the batch in flight to finish (then it is abandoned: its sink transaction rolls
    # back, nothing is committed past it), the rest to leave the group and close the clients;
    # Faust's own services use what is left, then a watchdog ends the process. A second signal
    # exits at once.
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    # Restart this project's failed connector tasks whose cause is transient (registry or
    # database briefly unreachable); permanent causes stay FAILED and loud.
    heal_connectors: bool = True
    # Prometheus scrape endpoint on 127.0.0.1 (0 turns it off). A second worker on the same host
    # finds it taken and runs without one (logged); give each its own port to scrape all.
    metrics_port: int = 9108
    # The materializer's Kafka consumer: "librdkafka" (confluent-kafka; fetches and unpacks in C,
    # off the event loop) or "aiokafka". Both join the group the same way (eager "roundrobin"
    # assignment), so the workers of one group may differ while a deployment switches.
    consumer: Literal["librdkafka", "aiokafka"] = "aiokafka"
    # How change records are decoded: "native" (the Rust reader of the optional module
    # changefeed_avro, built from streams/codecs/native by `make install`; where it is not
    # installed, "compiled" with a warning at start), "compiled" (per writer schema, Python
    # generated once) or "fastavro" (the library's reader for every record: the way back if a
    # record ever decodes differently, which the differential tests say none does). All three
    # return the same values; native took a third of compiled's CPU per record, compiled three
    # quarters of fastavro's (streams/codecs/native/README.md).
    avro_reader: Literal["native", "compiled", "fastavro"] = "native"
    # How domain events are encoded: "native" (the Rust writer where it covers the event: exact
    # Python types, an unambiguous union branch; fastavro for the rest) or "fastavro". Same bytes.
    avro_writer: Literal["native", "fastavro"] = "native"
    # Where domain events are encoded and produced: "inline" (in the worker's process) or
    # "process" (a child process per pipeline, while the worker goes on handling the batch).
    # Measured on a 2-core box, one partition: "process" moved 13-20 % more events/s for 5-10 %
    # more CPU and ~75 MB more memory (the child's interpreter and clients), so it is for a
    # worker bound to one core with a core to spare. Either way a batch's offsets are stored
    # only after all its events are acked.
    publisher: Literal["inline", "process"] = "inline"


# The example project the local stack's defaults run: the demo's tables file and transforms.
DEMO_TABLES = Path(__file__).parent / "demo" / "project" / "tables.toml"


class ProjectSettings(_Section):
    """Your project: what to materialize and which transforms to run (env ``CHANGEFEED_PROJECT__*``).

    The default is the demo's project (the local stack's defaults are the demo's databases too);
    point ``tables`` at your own tables file. Its ``transforms`` modules import from its folder.
    """

    tables: Path = DEMO_TABLES
    # Connector definitions (one JSON file each): the worker derives every table's change topic
    # from the connector whose include list captures it.
    connectors_dir: Path = Path("connectors")


class PipelineSettings(_Section):
    """What the worker consumes and how it batches (env ``CHANGEFEED_PIPELINE__*``)."""

    # Empty: derived from the project (its tables' change topics and its transforms' outbox
    # topics). A list here overrides that — for replays and tests on topics of their own.
    topics: tuple[str, ...] = ()
    # Sink schema of tables that name none, and of changefeed's own control tables (offsets,
    # conflict ledger, audit); tests use one schema each.
    sink_schema: str = "public"
    # One flush per poll: up to this many records across the assigned partitions. Larger
    # batches amortize the transaction; 5000 keeps one flush well under a second.
    max_batch: int = 5000
    # While the sink commits a batch: "poll" reads the next poll (raw records), so the consumer's
    # next fetch is on its way while this batch's transaction runs, and tops it up after the
    # commit; "decode" also decodes its keys and values for as long as the flush lasts; "off"
    # (the default) polls only after the commit. Either way the next batch is handled after this
    # one's sink commit, and offsets are stored only in the sink transaction of the batch they
    # belong to, in order per partition. true/false (older configs) mean "decode"/"off". Off by
    # default: on a 2-core box neither mode moved more events/s in a full bench, and both held
    # 15-40 MB more RSS on large rows. What each measured is in streams/pipeline/README.md.
    read_ahead: Literal["off", "poll", "decode"] = "off"

    @field_validator("read_ahead", mode="before")
    @classmethod
    def _read_ahead_bool(cls, value: Any) -> Any:
        """The boolean this setting was first (true: decode ahead), as a bool or as env text."""
        if isinstance(value, str):
            value = {"true": True, "false": False}.get(value.lower(), value)
        if isinstance(value, bool):
            return "decode" if value else "off"
        return value

    # How long a poll waits for records; bounds latency at low load.
    poll_timeout_ms: int = 200
    # Back-off for transient failures (sink, registry or Kafka down): doubles up to the max.
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    # Partitions for the DLQ and domain topics this worker creates when they are missing.
    created_topic_partitions: int = 1
    publish_domain_events: bool = True
    # TEST-ONLY fault hook (K2), off at 0: after this many committed sink flushes the process
    # exits at once (os._exit), after the sink transaction and before the Kafka commit.
    fault_exit_after_flushes: int = 0
    # Source columns added after release, mapped without a code change: {source table: {source
    # column: "sink_name[:type]"}}, e.g. {"public.customers": {"bio": "bio:text"}}. The sink adds
    # the column at startup; colliding names fail the worker's start (validate_mappings).
    extra_columns: dict[str, dict[str, str]] = {}


class NatsBridgeSettings(_Section):
    """The NATS JetStream bridge and the stack's nats-server (env ``CHANGEFEED_BUS__NATS__*``)."""

    # Off by default: when on, `changefeed up` starts nats-server and the worker fans out to it.
    enabled: bool = False
    host: str = LOOPBACK
    # Not NATS's default 4222/8222, like every other service of the local stack.
    port: int = 14222
    monitor_port: int = 18222
    # Created if missing, capturing ``<subject_prefix>.>``; one subject per event type below it.
    stream: str = "CHANGEFEED"
    subject_prefix: str = "changefeed"
    # JetStream drops a message whose Nats-Msg-Id it saw within this window: it must outlast the
    # longest redelivery (a dead worker's session timeout + the commit interval + a restart).
    duplicate_window_s: float = 600.0

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"


class RedisBridgeSettings(_Section):
    """The Redis Streams bridge and the stack's redis-server (env ``CHANGEFEED_BUS__REDIS__*``)."""

    enabled: bool = False
    host: str = LOOPBACK
    port: int = 16379
    # One stream per event type: ``<stream_prefix><event type>``.
    stream_prefix: str = "changefeed:"
    # XADD ... MAXLEN ~ this: Redis trims whole nodes, so a stream holds at least this many.
    maxlen: int = 100_000
    # Redis has no duplicate window of its own: the bridge keeps ``<stream>:seen:<event id>`` this
    # long and skips an XADD whose event it already added (both in one Lua script, atomically).
    dedupe_ttl_s: int = 600

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


class BusSettings(_Section):
    """The event bus: Faust agents on the domain topics (env ``CHANGEFEED_BUS__*``)."""

    # Empty: the project's domain topics. A list here overrides that (tests use their own).
    topics: tuple[str, ...] = ()
    # Modules with a ``register(handlers)`` function adding idempotent handlers by event type.
    handler_modules: tuple[str, ...] = ()
    # The handlers' own PostgreSQL database (ledger + effects in one transaction); its server
    # defaults to the sink's, its database is created when missing.
    handler_database: str = "notifications"
    handler_schema: str = "public"
    # How often Faust commits the agents' acked offsets; a crash redelivers at most this much
    # (the bridges' duplicate windows and the handlers' ledger absorb the redelivery).
    commit_interval_s: float = 2.8
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0
    nats: NatsBridgeSettings = NatsBridgeSettings()
    redis: RedisBridgeSettings = RedisBridgeSettings()


class Settings(BaseSettings):
    """Everything changefeed needs to know about the world it runs in."""

    model_config = SettingsConfigDict(
        env_prefix="CHANGEFEED_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    stack: StackSettings = StackSettings()
    kafka: KafkaSettings = KafkaSettings()
    connect: ConnectSettings = ConnectSettings()
    registry: RegistrySettings = RegistrySettings()
    source_postgres: SourcePostgresSettings = SourcePostgresSettings()
    source_mariadb: SourceMariaDBSettings = SourceMariaDBSettings()
    sink_postgres: SinkPostgresSettings = SinkPostgresSettings()
    worker: WorkerSettings = WorkerSettings()
    pipeline: PipelineSettings = PipelineSettings()
    project: ProjectSettings = ProjectSettings()
    bus: BusSettings = BusSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("CHANGEFEED_CONFIG", "changefeed.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once; ``overrides`` are CLI flags as nested dicts."""
    return Settings(**overrides)
