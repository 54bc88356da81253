"""Scratch capture on the shared stack: one source table, one connector, its own everything.

Each ``Scratch`` owns a unique name used as table, topic prefix, slot, publication, signal table
and (MariaDB) server id, so re-snapshot tests never touch the demo's connectors, tables or topics.
The connector config is the real one from ``connectors/*.json`` (converters, transaction
metadata, offset handling) with only names, login and table lists replaced; it logs in with the
admin login because migrations revoke the Debezium login's grants on tables they do not know.
``close`` removes all of it (connector, slot, publication, tables, topics).
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
import pymysql
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from streams.codecs import AvroDecoder
from streams.connect.apply import wait_running, wait_state
from streams.connect.client import ConnectClient
from streams.connect.definitions import load_definitions, template_variables
from streams.errors import ConnectNotFoundError
from streams.pipeline import Handler, Pipeline, PipelineSettings, Rebalance
from streams.project import HandlerRegistry
from streams.registry.client import RegistryClient
from streams.secrets import placeholder
from streams.settings import Settings
from streams.sinks import AsyncPostgresSink, conninfo_from
from streams.sinks.mapping import Column, TableMapping
from streams.stack.secrets import STACK_SECRETS
from streams.stack.supervisor import context_for
from tests.polling import poll

Source = Literal["postgres", "mariadb"]
REPO = Path(__file__).resolve().parents[3]
SNAPSHOT_TIMEOUT_S = 180.0


def _pg(settings: Settings) -> psycopg.Connection[Any]:
    db = settings.source_postgres
    return psycopg.connect(host=db.host, port=db.port, user=db.user, dbname=db.database,
                           password=db.password.get_secret_value(), autocommit=True)  # fmt: skip


def _maria(settings: Settings) -> Any:
    db = settings.source_mariadb
    return pymysql.connect(host=db.host, port=db.port, user=db.user, database=db.database,
                           password=db.password.get_secret_value(), autocommit=True)  # fmt: skip


@dataclass
class Scratch:
    settings: Settings
    source: Source
    name: str = field(default_factory=lambda: f"snap_{uuid.uuid4().hex[:10]}")
    connect: ConnectClient = field(init=False)
    gap: str = ""  # how the test takes capture's place away

    def __post_init__(self) -> None:
        self.connect = ConnectClient(self.settings.connect.url)
        self.container = "public" if self.source == "postgres" else self.settings.source_mariadb.database
        self.signal = f"{self.name}_sig"

    @property
    def table_id(self) -> str:
        return f"{self.container}.{self.name}"

    @property
    def topic(self) -> str:
        return f"{self.name}.{self.container}.{self.name}"

    def mapping(self, schema: str) -> TableMapping:
        return TableMapping(
            source_table=self.table_id,
            sink_table=self.name,
            sink_schema=schema,
            columns=[Column("id", type="bigint"), Column("tier"), Column("n", type="bigint")],
            key=["id"],
        )

    # --- source SQL -------------------------------------------------------------------------
    def sql(self, statement: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the source (``{t}`` = the scratch table), autocommit."""
        text = statement.format(t=self.name, s=self.signal)
        if self.source == "postgres":
            with _pg(self.settings) as conn:
                cur = conn.execute(text.encode(), args)
                return cur.fetchall() if cur.description else []
        with closing(_maria(self.settings)) as conn, conn.cursor() as cur:
            cur.execute(text, args)
            return list(cur.fetchall())

    @contextmanager
    def open_transaction(self) -> Iterator[Callable[[str], object]]:
        """A transaction held open while the caller does other things; committed on exit."""
        if self.source == "postgres":
            with _pg(self.settings) as conn:
                conn.autocommit = False
                yield lambda s: conn.execute(s.format(t=self.name).encode())
                conn.commit()
            return
        with closing(_maria(self.settings)) as conn:
            conn.autocommit(False)
            cur = conn.cursor()
            conn.begin()
            yield lambda s: cur.execute(s.format(t=self.name))
            conn.commit()

    def create_tables(self, rows: int) -> None:
        if self.source == "postgres":
            self.sql("CREATE TABLE {t} (id bigint PRIMARY KEY, tier text, n bigint)")
            self.sql("CREATE TABLE {s} (id varchar(64) PRIMARY KEY, type varchar(32), data varchar(2048))")
            self.sql("INSERT INTO {t} SELECT g, 'basic', 0 FROM generate_series(1, %s) g", (rows,))
            self.sql("CREATE PUBLICATION {t} FOR TABLE {t}, {s}")
            return
        self.sql("CREATE TABLE {t} (id bigint PRIMARY KEY, tier varchar(32), n bigint)")
        self.sql("CREATE TABLE {s} (id varchar(64) PRIMARY KEY, type varchar(32), data varchar(2048))")
        self.sql("INSERT INTO {t} SELECT seq, 'basic', 0 FROM seq_1_to_" + str(int(rows)))

    # --- the connector ----------------------------------------------------------------------
    def config(self) -> dict[str, str]:
        defs = {d.name: d for d in load_definitions(REPO / "connectors", template_variables(self.settings))}
        secrets = context_for(self.settings).paths.secrets / STACK_SECRETS
        if self.source == "postgres":
            config = copy.deepcopy(defs["customers"].config)
            config.update({
                "database.user": self.settings.source_postgres.user,
                "database.password": placeholder(secrets, "source_postgres.password"),
                "slot.name": self.name, "publication.name": self.name,
                "table.include.list": f"public.{self.name},public.{self.signal}",
                "signal.data.collection": f"public.{self.signal}",
            })  # fmt: skip
            config.pop("heartbeat.action.query", None)  # the shared heartbeat row is not ours
        else:
            config = copy.deepcopy(defs["orders"].config)
            for key in [k for k in config if k.startswith(("transforms", "predicates"))]:
                del config[key]  # the outbox router: no outbox here
            db = self.settings.source_mariadb.database
            config.update({
                "database.user": self.settings.source_mariadb.user,
                "database.password": placeholder(secrets, "source_mariadb.password"),
                "database.server.id": str(300000 + uuid.uuid4().int % 600000),
                "table.include.list": f"{db}.{self.name},{db}.{self.signal}",
                "signal.data.collection": f"{db}.{self.signal}",
                "schema.history.internal.kafka.topic": f"{self.name}.schema-history",
            })  # fmt: skip
        config["topic.prefix"] = self.name
        config["name"] = self.name
        return config

    def start(self) -> None:
        self.connect.put_config(self.name, self.config())
        wait_running(self.connect, self.name, timeout_s=120)

    def reset_offsets(self) -> None:
        """What ``changefeed connectors offsets reset <name> --no-resume`` does."""
        self.connect.stop(self.name)
        wait_state(self.connect, self.name, "STOPPED", timeout_s=60)
        self.connect.reset_offsets(self.name)

    def drop_slot(self) -> None:
        """Drop the replication slot of a stopped connector (its WAL position is lost)."""
        with _pg(self.settings) as conn:
            active = "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active"
            poll(lambda: not conn.execute(active, (self.name,)).fetchone(), 60, f"slot {self.name} released")
            conn.execute("SELECT pg_drop_replication_slot(%s)", (self.name,))

    def resume(self) -> None:
        self.connect.resume(self.name)
        wait_running(self.connect, self.name, timeout_s=120, accept_held=False)

    def incremental_snapshot(self) -> None:
        data = json.dumps({"data-collections": [self.table_id], "type": "incremental"})
        self.sql(
            "INSERT INTO {s} (id, type, data) VALUES (%s, 'execute-snapshot', %s)", (uuid.uuid4().hex, data)
        )

    # --- reading the topic ------------------------------------------------------------------
    def read(self, since: int = 0, until: Callable[[list[dict[str, Any]]], bool] | None = None,
             timeout_s: float = SNAPSHOT_TIMEOUT_S) -> list[dict[str, Any]]:  # fmt: skip
        """Decoded values (tombstones left out) from offset ``since`` until ``until`` holds."""
        decoder = AvroDecoder(RegistryClient(self.settings.registry.url))
        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka.bootstrap_servers,
                                 enable_auto_commit=False, metadata_max_age_ms=1000)  # fmt: skip
        out: list[dict[str, Any]] = []
        try:
            poll(lambda: consumer.partitions_for_topic(self.topic), 120, f"topic {self.topic}")
            tp = TopicPartition(self.topic, 0)
            consumer.assign([tp])
            consumer.seek(tp, since)

            def more() -> bool:
                for r in consumer.poll(500).get(tp, []):
                    if r.value is not None:
                        value = decoder.decode(r.value)
                        value["__offset"] = r.offset
                        out.append(value)
                return until(out) if until is not None else False

            if until is not None:
                poll(more, timeout_s, f"records on {self.topic}", 0)
            else:
                more()
        finally:
            consumer.close()
        return out

    # --- cleanup ----------------------------------------------------------------------------
    def close(self) -> None:
        try:
            if self.connect.config(self.name) is not None:
                self.connect.stop(self.name)
                wait_state(self.connect, self.name, "STOPPED", timeout_s=60)
                self.connect.delete(self.name)
                poll(lambda: self.name not in self.connect.names(), 60, f"{self.name} deleted")
        except ConnectNotFoundError:
            pass
        if self.source == "postgres":
            with _pg(self.settings) as conn:
                poll(lambda: not conn.execute(
                    "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active", (self.name,)
                ).fetchone(), 60, f"slot {self.name} released")  # fmt: skip
                drop = "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                drop += " WHERE slot_name = %s"
                conn.execute(drop, (self.name,))
            self.sql("DROP PUBLICATION IF EXISTS {t}")
        self.sql("DROP TABLE IF EXISTS {t}")
        self.sql("DROP TABLE IF EXISTS {s}")
        admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka.bootstrap_servers)
        try:
            topics = [t for t in admin.list_topics() if self.name in t]
            if topics:
                admin.delete_topics(topics)
        finally:
            admin.close()
        self.connect.close()


def wait_snapshot_done(values: list[dict[str, Any]]) -> bool:
    return any(v["source"].get("snapshot") == "last" for v in values)


class ScratchPipeline:
    """The worker's pipeline (consumer, handler, sink, loop) in a thread, on one scratch table.

    ``changefeed worker`` materializes only the shipping mappings; a scratch table needs its own
    mapping, so this builds the same ``Pipeline`` the worker runs with an ``AsyncPostgresSink`` over
    that mapping, subscribed to the scratch topic only, writing into a private sink schema.
    """

    def __init__(self, settings: Settings, mapping: TableMapping, topic: str, group: str) -> None:
        self.settings, self.mapping, self.topic, self.group = settings, mapping, topic, group
        self.loop = asyncio.new_event_loop()
        self.pipeline: Pipeline | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"pipeline-{group}", daemon=True)

    def start(self) -> ScratchPipeline:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced by stop(): a test must not pass over a crash
            self.failure = exc

    async def _main(self) -> None:
        s = self.settings
        schema = self.mapping.sink_schema
        conninfo = conninfo_from(s.sink_postgres)
        sink = AsyncPostgresSink(conninfo, [self.mapping], self.group, control_schema=schema)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka.bootstrap_servers, group_id=self.group, enable_auto_commit=False,
            auto_offset_reset="earliest", metadata_max_age_ms=1000,
        )  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers, acks="all")
        ps = PipelineSettings(topics=(self.topic,), sink_schema=schema, publish_domain_events=False)
        handler = Handler(AvroDecoder(RegistryClient(s.registry.url)), HandlerRegistry(), None, sink, None)
        p = self.pipeline = Pipeline(consumer, producer, sink, handler, ps)
        await sink.ensure_schema()
        await producer.start()
        consumer.subscribe(topics=[self.topic], listener=Rebalance(p))
        await consumer.start()
        try:
            await p.run()
        finally:
            await consumer.stop()
            await producer.stop()
            await sink.close()

    def stop(self) -> None:
        if self.pipeline is not None:
            self.loop.call_soon_threadsafe(self.pipeline.stopping.set)
        self.thread.join(60)
        assert not self.thread.is_alive(), "pipeline did not stop"
        self.loop.close()
        if self.failure is not None:
            raise self.failure
