"""Writes to the customers service (PostgreSQL), one transaction per operation.

``updated_at`` is stamped with ``clock_timestamp()`` inside the transaction, so the change event
carries (within a millisecond) its own commit time for end-to-end latency. Deletes cascade to
``customer_notes``, which is not captured.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from streams.consistency.drivers import psycopg_token
from streams.load import data
from streams.load.keys import KeyPool
from streams.load.mix import WriteOp
from streams.load.written import Written
from streams.settings import SourcePostgresSettings

TABLE = "customers"
_UPDATABLE = ("tier", "phone", "display_name", "credit_limit", "preferences", "last_login_at", "email", "bio")


def connect(db: SourcePostgresSettings) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password.get_secret_value(),
        dbname=db.database, application_name="changefeed-load",
    )  # fmt: skip


class CustomersWriter:
    source = "customers"
    tokens = False  # read a consistency token after each commit (one more round trip)

    def __init__(
        self, conn: psycopg.Connection[Any], rng: random.Random, pool: KeyPool, large_every: int
    ) -> None:
        self.conn, self.rng, self.pool, self.large_every = conn, rng, pool, large_every
        self._base = datetime(2026, 1, 1, tzinfo=UTC)

    def load_keys(self) -> None:
        for (key,) in self.conn.execute("SELECT id FROM public.customers ORDER BY id"):
            self.pool.add(int(key))
        self.conn.commit()

    def _large(self) -> str | None:
        return (
            data.large_text(self.rng)
            if self.large_every and self.rng.randrange(self.large_every) == 0
            else None
        )

    def _value(self, column: str, key: int) -> Any:
        rng = self.rng
        if column == "tier":
            return rng.choice(data.TIERS)
        if column == "phone":
            return data.maybe(rng, f"+{rng.randint(1, 99)} {rng.randint(100_000, 999_999_999)}")
        if column == "display_name":
            return data.maybe(rng, " ".join(data.person(rng)))
        if column == "credit_limit":
            return data.maybe(rng, data.money(rng))
        if column == "preferences":
            return data.maybe(rng, data.canonical_json(data.preferences(rng)))
        if column == "last_login_at":
            return data.maybe(rng, data.instant(rng, self._base))
        if column == "email":
            return f"{data.email_local(*data.person(rng))}+{key}@example.com"
        return self._large() or data.maybe(rng, "short bio ✓", 0.5)

    def write(self, op: WriteOp) -> Written:
        if op is not WriteOp.INSERT and not self.pool:
            op = WriteOp.INSERT
        with self.conn.transaction():
            if op is WriteOp.INSERT:
                key, stamp = self._insert()
            elif op is WriteOp.UPDATE:
                key = self.pool.pick(self.rng)
                stamp = self._update(key)
            else:
                key = self.pool.pick(self.rng)
                row = self.conn.execute(
                    "DELETE FROM public.customers WHERE id = %s RETURNING clock_timestamp()", (key,)
                ).fetchone()
                stamp = row[0] if row else datetime.now(UTC)
        committed = datetime.now(UTC)
        if op is WriteOp.INSERT:
            self.pool.add(key)
        elif op is WriteOp.DELETE:
            self.pool.remove(key)
        token = str(psycopg_token(self.conn, self.source)) if self.tokens else None
        return Written(self.source, op, key, stamp, committed, Counter({TABLE: 1}), token=token)

    def _insert(self) -> tuple[int, datetime]:
        rng = self.rng
        row = self.conn.execute("SELECT nextval(pg_get_serial_sequence('public.customers', 'id'))").fetchone()
        assert row is not None
        key = int(row[0])
        first, last = data.person(rng)
        values = {
            "id": key,
            "email": f"{data.email_local(first, last)}+{key}@example.com",
            "first_name": first,
            "last_name": last,
            "phone": self._value("phone", key),
            "tier": rng.choice(data.TIERS),
            "display_name": data.maybe(rng, f"{first} {last}"),
            "birth_date": data.maybe(rng, data.birth_date(rng)),
            "credit_limit": self._value("credit_limit", key),
            "preferences": self._value("preferences", key),
            "bio": self._large() or data.maybe(rng, f"Hi, I'm {first} 👋", 0.5),
            "last_login_at": self._value("last_login_at", key),
        }
        query = sql.SQL(
            "INSERT INTO public.customers ({}, created_at, updated_at)"
            " VALUES ({}, clock_timestamp(), clock_timestamp()) RETURNING updated_at"
        ).format(
            sql.SQL(", ").join(sql.Identifier(c) for c in values),
            sql.SQL(", ").join(sql.Placeholder() for _ in values),
        )
        stamp = self.conn.execute(query, list(values.values())).fetchone()
        assert stamp is not None
        return key, stamp[0]

    def _update(self, key: int) -> datetime:
        columns = self.rng.sample(_UPDATABLE, self.rng.randint(1, 3))
        values = [self._value(c, key) for c in columns]
        query = sql.SQL(
            "UPDATE public.customers SET {}, updated_at = clock_timestamp()"
            " WHERE id = %s RETURNING updated_at"
        ).format(sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns))
        row = self.conn.execute(query, [*values, key]).fetchone()
        return row[0] if row else datetime.now(UTC)
