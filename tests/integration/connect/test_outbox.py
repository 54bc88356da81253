"""The orders connector routes outbox rows to outbox.event.<aggregatetype> (and only those)."""

from __future__ import annotations

import json
import uuid

import pymysql
import pytest
from confluent_kafka.admin import AdminClient

from streams.connect.apply import apply_definition
from streams.connect.client import ConnectClient
from streams.connect.definitions import ConnectorDefinition
from streams.settings import Settings
from tests.integration.connect.connect_it_helpers import high_watermark
from tests.polling import poll

pytestmark = pytest.mark.integration


def test_outbox_row_lands_on_its_aggregate_topic(
    settings: Settings, client: ConnectClient, definitions: dict[str, ConnectorDefinition], admin: AdminClient
) -> None:
    apply_definition(client, definitions["orders"])
    aggregate = f"it{uuid.uuid4().hex[:8]}"
    topic = f"outbox.event.{aggregate}"
    db = settings.source_mariadb
    conn = pymysql.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password.get_secret_value(),
        database=db.database,
    )
    try:
        with conn.cursor() as cur:
            # The business row and its event in one transaction: the transactional outbox.
            cur.execute("INSERT INTO orders (customer_id, total_cents) VALUES (%s, %s)", (1, 1234))
            order_id = cur.lastrowid
            cur.execute(
                "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    str(uuid.uuid4()),
                    aggregate,
                    str(order_id),
                    "OrderPlaced",
                    json.dumps({"order_id": order_id}),
                ),
            )
        conn.commit()
    finally:
        conn.close()
    try:
        poll(lambda: high_watermark(settings, topic) >= 1, 60, f"an event on {topic}")
        assert high_watermark(settings, f"orders.{db.database}.outbox") == 0
    finally:
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.result()
