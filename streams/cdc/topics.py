"""Every Kafka topic name changefeed uses, built in one place.

Debezium names change topics ``<topic.prefix>.<schema>.<table>`` (PostgreSQL) or
``<topic.prefix>.<database>.<table>`` (MariaDB/MySQL); the outbox event router's default route is
``outbox.event.<aggregate type>``. Dead letters go to ``<source topic>.dlq`` so each source topic's
poison stays next to it; domain events go to ``domain.<domain>`` keyed by entity id.

The domain topic is the one the Avro contracts name (``schemas/index.json``: subjects
``domain.<domain>-<record>`` under TopicRecordNameStrategy, several event types per topic), so
``domain_topic`` builds exactly that and a unit test holds every contract and transform to it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from streams.errors import ConfigError

# Kafka's own rule: 1-249 characters of [a-zA-Z0-9._-], and not "." or "..".
_LEGAL = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
DLQ_SUFFIX = ".dlq"
OUTBOX_PREFIX = "outbox.event"
DOMAIN_PREFIX = "domain"


def _checked(topic: str) -> str:
    if not _LEGAL.match(topic) or topic in {".", ".."}:
        msg = f"illegal Kafka topic name {topic!r}: use 1-249 characters of [A-Za-z0-9._-]"
        raise ConfigError(msg)
    return topic


def _part(name: str, what: str) -> str:
    if not name or "." in name:
        msg = f"{what} {name!r} must be non-empty and contain no '.' (it is a topic-name segment)"
        raise ConfigError(msg)
    return name


class TableTopic(NamedTuple):
    prefix: str
    schema: str
    table: str


def table_topic(prefix: str, schema: str, table: str) -> str:
    """Debezium's change topic for one source table."""
    return _checked(f"{prefix}.{_part(schema, 'schema')}.{_part(table, 'table')}")


def parse_table_topic(topic: str) -> TableTopic:
    """Split a change topic; the prefix may itself contain dots, schema and table cannot."""
    rest = topic.rsplit(".", 2)
    if len(rest) != 3 or not all(rest):
        msg = f"not a <prefix>.<schema>.<table> topic: {topic!r}"
        raise ConfigError(msg)
    return TableTopic(*rest)


def dlq_topic(topic: str) -> str:
    """Dead-letter topic for a source topic (never a DLQ of a DLQ)."""
    if topic.endswith(DLQ_SUFFIX):
        return _checked(topic)
    return _checked(topic + DLQ_SUFFIX)


def outbox_topic(aggregate: str) -> str:
    """Where Debezium's outbox EventRouter routes an aggregate type by default."""
    return _checked(f"{OUTBOX_PREFIX}.{_part(aggregate, 'aggregate type')}")


def domain_topic(domain: str) -> str:
    """Every event type of one domain (``domain.customers``), keyed by entity id so each entity's
    events stay ordered; the contracts' subjects are ``<this topic>-<record full name>``."""
    return _checked(f"{DOMAIN_PREFIX}.{_part(domain, 'domain')}")


def subject_topic(subject: str) -> str:
    """The topic of a TopicRecordNameStrategy subject ``<topic>-<record full name>``."""
    topic, sep, record = subject.rpartition("-")
    if not sep or not topic or not record:
        msg = f"not a <topic>-<record> subject: {subject!r}"
        raise ConfigError(msg)
    return _checked(topic)
