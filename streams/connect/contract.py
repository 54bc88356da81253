"""Rules every committed connector definition must follow, checked before anything is sent.

Old tutorials still teach keys Debezium removed (``database.server.name``, ``*.whitelist``);
Connect silently ignores unknown keys, so a stale key means a setting that quietly does nothing.
Plaintext passwords would be echoed by the REST API and stored in the config topic, and
``errors.tolerance=all`` on a source connector skips failed records and commits their offsets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Removed in Debezium 2.0 (replacement in the message).
REMOVED_KEYS: Mapping[str, str] = {
    "database.server.name": "topic.prefix",
    "database.history.kafka.topic": "schema.history.internal.kafka.topic",
    "database.history.kafka.bootstrap.servers": "schema.history.internal.kafka.bootstrap.servers",
    "database.history.skip.unparseable.ddl": "schema.history.internal.skip.unparseable.ddl",
    "database.whitelist": "database.include.list",
    "database.blacklist": "database.exclude.list",
    "schema.whitelist": "schema.include.list",
    "schema.blacklist": "schema.exclude.list",
    "table.whitelist": "table.include.list",
    "table.blacklist": "table.exclude.list",
    "column.whitelist": "column.include.list",
    "column.blacklist": "column.exclude.list",
}
_PLACEHOLDER = re.compile(r"^\$\{(file|env|directory):[^}]+\}$")
_SECRET_KEY = re.compile(r"(^|[._])(password|secret)$", re.IGNORECASE)


def violations(config: Mapping[str, str]) -> list[str]:
    """Every rule the config breaks, one message per offending key (empty when clean)."""
    found: list[str] = []
    for key, value in sorted(config.items()):
        if key in REMOVED_KEYS:
            found.append(f"{key}: removed from Debezium, use {REMOVED_KEYS[key]}")
        elif key.endswith((".whitelist", ".blacklist")) or key.startswith("database.history."):
            found.append(f"{key}: removed from Debezium (use *.include.list / *.exclude.list)")
        if _SECRET_KEY.search(key) and not _PLACEHOLDER.match(value):
            found.append(f"{key}: must be a config-provider placeholder like ${{file:<path>:<key>}}")
        if key.endswith("errors.tolerance") and value.strip().lower() == "all":
            found.append(f"{key}=all silently drops records on a source connector; use none")
    return found
