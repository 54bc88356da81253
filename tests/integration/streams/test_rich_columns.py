"""The demo's rich columns, through real Debezium messages, land in the sink with their types.

Covers the conversions by Debezium semantic type (``streams.cdc.logical``) and S3: with
REPLICA IDENTITY DEFAULT, an update that leaves a TOASTed ``bio`` alone carries Debezium's
unavailable-value placeholder, and the sink keeps the stored 16 KiB value.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from streams.codecs import AvroDecoder
from streams.load.data import LARGE_TEXT_BYTES, canonical_json, large_text
from streams.registry.client import RegistryClient
from streams.settings import Settings
from tests.integration.streams.helpers import Worker
from tests.integration.streams.test_sources import Conn, customers_db, one, orders_db
from tests.polling import poll

pytestmark = pytest.mark.integration
CUSTOMERS_TOPIC = "customers.public.customers"
PLACEHOLDER = "__debezium_unavailable_value"
CUSTOMERS_DOMAIN = "domain.customers"


def _bio() -> str:
    return large_text(random.Random(7), LARGE_TEXT_BYTES)


def captured_updates(
    settings: Settings, cid: int, since: datetime, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """The update events of customer ``cid`` as Debezium wrote them (to prove the placeholder),
    read from the first record after ``since`` (a long-lived stack's topic can hold millions)."""
    decoder = AvroDecoder(RegistryClient(settings.registry.url))
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    tp = TopicPartition(CUSTOMERS_TOPIC, 0)
    c.assign([tp])
    start = c.offsets_for_times({tp: int(since.timestamp() * 1000)}).get(tp)
    if start is None:
        c.seek_to_end(tp)
    else:
        c.seek(tp, start.offset)
    found: list[dict[str, Any]] = []

    def scan() -> bool:
        for r in c.poll(1000, max_records=5000).get(tp, []):
            v = decoder.decode(r.value) if r.value is not None else None
            if v and v["op"] == "u" and (v["after"] or {}).get("id") == cid:
                found.append(v["after"])
        return bool(found)

    try:
        poll(scan, timeout_s, f"the update of customer {cid} on {CUSTOMERS_TOPIC}", 0)
    finally:
        c.close()
    return found


def domain_events(
    settings: Settings, subject: str, since: datetime, want: int, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """Distinct domain events (by id) about ``subject`` committed after ``since`` (crafted test
    messages reuse customer ids, with old timestamps), once ``want`` of them arrived."""
    decoder = AvroDecoder(RegistryClient(settings.registry.url))
    c = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    tps = [
        TopicPartition(CUSTOMERS_DOMAIN, p) for p in sorted(c.partitions_for_topic(CUSTOMERS_DOMAIN) or ())
    ]
    c.assign(tps)
    # From the first record produced after ``since`` (a long-lived stack's topic can hold millions).
    starts = c.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
    for tp in tps:
        start = starts.get(tp)
        if start is None:
            c.seek_to_end(tp)
        else:
            c.seek(tp, start.offset)
    found: dict[str, dict[str, Any]] = {}

    def scan() -> bool:
        for records in c.poll(1000, max_records=5000).values():
            for r in records:
                v = decoder.decode(r.value)
                if v["subject"] == subject and v["time"] >= since:
                    found.setdefault(v["id"], v)
        return len(found) >= want

    try:
        poll(scan, timeout_s, f"{want} domain events about customer {subject}", 0)
        scan()  # anything more already there
    finally:
        c.close()
    return sorted(found.values(), key=lambda v: v["version"])


def test_rich_columns_convert_and_unchanged_toast_keeps_bio(
    settings: Settings, sink: Conn, schema: str, workers: Callable[..., Worker]
) -> None:
    tag = uuid.uuid4().hex[:8]
    started = datetime.now(UTC) - timedelta(seconds=5)  # source clock vs ours, same machine
    bio = _bio()
    prefs = {"language": "de", "channels": ["sms"], "quiet_hours": {"to": 7, "from": 22}}
    with customers_db(settings) as pg:
        identity = pg.execute(
            "SELECT relreplident FROM pg_class WHERE oid = 'public.customers'::regclass"
        ).fetchone()
        assert identity == ("d",), "S3 must hold with REPLICA IDENTITY DEFAULT"
        cid = pg.execute(
            "INSERT INTO customers (email, first_name, last_name, display_name, birth_date, credit_limit,"
            " preferences, bio, last_login_at) VALUES (%s, 'Zoë', 'Øster', 'Zoë 🦊 Øster', '1962-04-21',"
            " 1234567890.05, %s, %s, '2026-05-28 06:24:07.914751+02') RETURNING id",
            (f"zoe-{tag}@it.test", json.dumps(prefs), bio),
        ).fetchone()[0]  # type: ignore[index]
    mdb = orders_db(settings)
    try:
        with mdb.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            address = canonical_json({"city": "Zürich", "name": "Zoë", "postcode": "8001"})
            cur.execute(
                "INSERT INTO orders (customer_id, total_cents, currency, total, shipping_address,"
                " gift_message, promised_at) VALUES (%s, 1999, 'CHF', 19.99, %s, %s,"
                " '2026-06-04 00:00:00.000001')",
                (cid, address, "Alles Gute 🎂"),
            )
            order_id = int(cur.lastrowid)
        mdb.commit()
    finally:
        mdb.close()

    workers(f"it-rich-{tag}", schema)
    cd, ov = f'"{schema}".customer_directory', f'"{schema}".order_view'
    customer = (
        f"SELECT display_name, birth_date, credit_limit, preferences, bio, last_login_at, tier FROM {cd}"
        " WHERE customer_id = %s"
    )
    expected = (
        "Zoë 🦊 Øster",
        date(1962, 4, 21),
        Decimal("1234567890.05"),
        prefs,
        bio,
        datetime(2026, 5, 28, 4, 24, 7, 914751, tzinfo=UTC),
        "standard",
    )
    poll(lambda: one(sink, customer, cid) == expected, 120, "the customer's rich columns")
    order = (
        f"SELECT total, shipping_address, gift_message, promised_at, currency FROM {ov} WHERE order_id = %s"
    )
    poll(
        lambda: (
            one(sink, order, order_id)
            == (
                Decimal("19.99"),
                {"city": "Zürich", "name": "Zoë", "postcode": "8001"},
                "Alles Gute 🎂",
                datetime(2026, 6, 4, 0, 0, 0, 1, tzinfo=UTC),
                "CHF",
            )
        ),
        120,
        "the order's rich columns",
    )
    created = one(sink, f"SELECT created_at, updated_at FROM {ov} WHERE order_id = %s", order_id)
    assert all(isinstance(t, datetime) and t.tzinfo is not None for t in created)

    with customers_db(settings) as pg:  # another column changes; the TOASTed bio does not
        pg.execute("UPDATE customers SET tier = 'gold' WHERE id = %s", (cid,))
    poll(lambda: one(sink, customer, cid) == (*expected[:-1], "gold"), 60, "the tier update, bio kept")
    updates = captured_updates(settings, cid, started)
    assert updates[-1]["bio"] == PLACEHOLDER  # the sink really saw the placeholder, not the text
    assert updates[-1]["tier"] == "gold"
    row = one(sink, f"SELECT octet_length(bio) FROM {cd} WHERE customer_id = %s", cid)
    assert row == (len(bio.encode()),)

    # Gap: updates carry no before image; the sink's previous row decides what changed. The tier
    # update changed nothing a contract knows; the email change is emitted with the old email.
    with customers_db(settings) as pg:
        pg.execute("UPDATE customers SET email = %s WHERE id = %s", (f"zoe2-{tag}@it.test", cid))
    events = domain_events(settings, str(cid), started, want=2)
    assert [e["type"].rsplit(".", 1)[1] for e in events] == ["CustomerRegistered", "CustomerEmailChanged"], [
        (e["type"], e["version"], e["data"]) for e in events
    ]
    assert events[1]["data"]["old_email"] == f"zoe-{tag}@it.test"
    assert events[1]["data"]["new_email"] == f"zoe2-{tag}@it.test"
