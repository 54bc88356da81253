"""A registry process per test module on a free port, backed by the local stack's real Kafka.

Each module gets its own ``_schemas_test_<uuid>`` topic so tests never see the stack's registry
state and can kill/restart their registry freely. Skipped (with the reason) if Kafka is not up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from streams.registry.process import RegistryProcess
from streams.settings import load_settings

BOOTSTRAP = load_settings().kafka.bootstrap_servers


def _kafka_up() -> bool:
    try:
        KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=3000).close()
    except (KafkaError, OSError):
        return False
    return True


@pytest.fixture(scope="module")
def kafka() -> str:
    if not _kafka_up():
        pytest.skip(f"Kafka is not reachable at {BOOTSTRAP} (start the stack with `changefeed up`)")
    return BOOTSTRAP


@pytest.fixture(scope="module")
def registry_topic() -> Iterator[str]:
    topic = f"_schemas_test_{uuid.uuid4().hex[:10]}"
    yield topic
    if _kafka_up():
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        try:
            admin.delete_topics([topic])
        except KafkaError:
            pass
        finally:
            admin.close()


@pytest.fixture(scope="module")
def registry(
    kafka: str, registry_topic: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryProcess]:
    log_path = Path(tmp_path_factory.mktemp("registry")) / "registry.log"
    process = RegistryProcess(registry_topic, kafka, log_path, base_env=os.environ).start()
    yield process
    process.stop()


@pytest.fixture
def subject() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"
