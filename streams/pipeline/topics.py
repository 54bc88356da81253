"""Create the topics this worker writes to, deliberately (the broker's auto-create is off).

Dead-letter topics mirror their source topic's partition count so a dead letter keeps its
partition; domain topics get the configured count. Existing topics are left as they are.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.cdc import dlq_topic

log = logging.getLogger(__name__)


def ensure_topics(
    bootstrap: str, sources: Iterable[str], domain: Iterable[str], partitions: int
) -> list[str]:
    """Create missing DLQ and domain topics; return the names created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="changefeed-worker-admin")
    try:
        existing = set(admin.list_topics())
        wanted: dict[str, int] = {t: partitions for t in domain}
        for source in sources:
            meta = admin.describe_topics([source]) if source in existing else []
            count = len(meta[0]["partitions"]) if meta and meta[0].get("partitions") else partitions
            wanted[dlq_topic(source)] = count
        missing = [NewTopic(t, n, 1) for t, n in sorted(wanted.items()) if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        admin.close()
