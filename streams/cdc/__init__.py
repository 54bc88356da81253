"""The Debezium change event, source positions and topic names (pure: no I/O, no clock)."""

from streams.cdc.envelope import ChangeEvent, Op, Row, parse_change_event
from streams.cdc.position import (
    SourceKind,
    SourcePosition,
    binlog_file_index,
    gtid_sequence,
    mysql_position,
    position_of,
    postgres_position,
)
from streams.cdc.topics import (
    TableTopic,
    dlq_topic,
    domain_topic,
    outbox_topic,
    parse_table_topic,
    table_topic,
)

__all__ = [
    "ChangeEvent",
    "Op",
    "Row",
    "SourceKind",
    "SourcePosition",
    "TableTopic",
    "binlog_file_index",
    "dlq_topic",
    "domain_topic",
    "gtid_sequence",
    "mysql_position",
    "outbox_topic",
    "parse_change_event",
    "parse_table_topic",
    "position_of",
    "postgres_position",
    "table_topic",
]
