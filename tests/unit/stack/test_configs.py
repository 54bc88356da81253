import zipfile
from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.settings import ConnectSettings, KafkaSettings, RegistrySettings
from streams.stack import configs
from streams.stack.jvm import CONFLUENT_SERVICES, write_manifest_jar
from streams.stack.paths import StackPaths

PATHS = StackPaths(Path("/state"), Path("/cache"))


def test_kafka_is_single_node_kraft_on_loopback() -> None:
    props = configs.kafka_server_properties(KafkaSettings(port=19092, controller_port=19093), PATHS)
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == "/state/data/kafka"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1", key


def test_connect_worker_uses_config_providers_and_fast_failover() -> None:
    props = configs.connect_worker_properties(
        ConnectSettings(port=18083), KafkaSettings(), RegistrySettings(), PATHS
    )
    assert props["listeners"] == "http://127.0.0.1:18083"
    assert props["plugin.path"] == "/cache/jvm/plugins"
    assert props["plugin.discovery"] == "service_load"  # no reflective scan of every plugin class
    assert props["config.providers"] == "file,env"
    assert props["config.providers.file.class"].endswith("FileConfigProvider")
    assert int(props["offset.flush.interval.ms"]) <= 5000
    assert int(props["scheduled.rebalance.max.delay.ms"]) <= 10000
    assert props["connector.client.config.override.policy"] == "None"


def test_properties_render_one_line_each() -> None:
    assert configs.render_properties({"a": "1", "b.c": "x y"}) == "a=1\nb.c=x y\n"


def test_postgres_source_decodes_and_sink_does_not() -> None:
    source = configs.postgres_flags(1, Path("/s"), logical=True)
    sink = configs.postgres_flags(2, Path("/s"), logical=False)
    assert "wal_level=logical" in source
    assert "wal_level=replica" in sink
    assert "listen_addresses=127.0.0.1" in source


def test_mariadb_has_row_binlog_with_gtid() -> None:
    flags = configs.mariadb_flags(3306, Path("/d"), Path("/s.sock"), Path("/i.sql"), "mysql")
    for flag in (
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--gtid-strict-mode=ON",
        "--bind-address=127.0.0.1",
        "--user=mysql",
    ):
        assert flag in flags
    assert any(f.startswith("--server-id=") for f in flags)


def test_mariadb_init_sql_is_idempotent() -> None:
    text = configs.mariadb_init_sql("admin", "pw", "orders")
    assert "CREATE DATABASE IF NOT EXISTS `orders`" in text
    assert text.count("CREATE USER IF NOT EXISTS") == 2


@pytest.mark.parametrize("bad", ["a'b", "x;DROP", "back`tick", "nul\x00", ""])
def test_mariadb_init_sql_rejects_unsafe_literals(bad: str) -> None:
    with pytest.raises(ConfigError):
        configs.mariadb_init_sql("admin", bad, "orders")


def test_the_converters_manifest_jar_names_it_for_the_service_loader(tmp_path: Path) -> None:
    jar = tmp_path / "manifests.jar"
    write_manifest_jar(jar, CONFLUENT_SERVICES)
    with zipfile.ZipFile(jar) as z:
        listed = z.read("META-INF/services/org.apache.kafka.connect.storage.Converter").decode()
    assert listed.split() == ["io.confluent.connect.avro.AvroConverter"]
    stamp = jar.stat().st_mtime_ns
    write_manifest_jar(jar, CONFLUENT_SERVICES)  # the same content: left alone
    assert jar.stat().st_mtime_ns == stamp
    write_manifest_jar(jar, {"x.Y": "a.B\n"})  # different: rewritten
    with zipfile.ZipFile(jar) as z:
        assert [n for n in z.namelist() if n.startswith("META-INF/services/")] == ["META-INF/services/x.Y"]
