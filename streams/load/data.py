"""Deterministic demo values: the shapes a CDC pipeline most often gets wrong.

Unicode names (combining marks, CJK, emoji, right-to-left), NULLs, decimals with two places,
timezone-aware timestamps, JSON and — for some rows — text large enough to be TOASTed. Every
value comes from the run's seeded ``random.Random``, so a seed reproduces a run.

JSON is written in PostgreSQL's ``jsonb`` text form (keys ordered by length, then bytes; ``", "``
and ``": "`` separators). MariaDB stores JSON text verbatim, so writing it canonically lets
``changefeed verify`` compare MariaDB JSON with sink ``jsonb`` by text in SQL.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

FIRST_NAMES = (
    "Zoë", "José", "Łukasz", "Søren", "Ærin", "Chloé", "Dvořák", "Nguyễn", "Анна", "Дмитрий",
    "李", "王芳", "さくら", "민준", "محمد", "נועה", "Ελένη", "Ömer", "Siobhán", "O'Brien",
    "Ana María", "Renée", "x; DROP TABLE canary; --", "🦊 Fox", "Ñandú",
)  # fmt: skip
LAST_NAMES = (
    "Müller", "García", "Østergård", "Nowak", "Smith", "Кузнецов", "田中", "김", "بن علي",
    "Lévy", "D'Angelo", "Öztürk", "Nguyễn", "Papadopoulos", "Ó Briain", "van der Berg",
)  # fmt: skip
SKUS = ("BOOK-001", "MUG-042", "TEE-S-RED", "TEE-M-BLU", "LAMP-7", "PEN-9", "SOCK-ÆØÅ", "CAFÉ-250G")
STATUSES = ("placed", "paid", "packed", "shipped", "delivered")
TIERS = ("standard", "silver", "gold", "platinum")
CITIES = ("Zürich", "São Paulo", "Kraków", "東京", "Reykjavík", "Montréal", "İstanbul", "Cork")
LARGE_TEXT_BYTES = 16 * 1024  # well above the 2 KiB TOAST threshold and PostgreSQL's 8 KiB page


def _pg_json_key(key: str) -> tuple[int, bytes]:
    encoded = key.encode()
    return (len(encoded), encoded)


def canonical_json(value: Any) -> str:
    """Render like PostgreSQL's ``jsonb::text`` for the value shapes this module generates.

    Supported: dicts with string keys, lists, strings, integers, booleans and ``None`` (floats
    are avoided on purpose: their text form differs between engines).
    """
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: _pg_json_key(kv[0]))
        return (
            "{"
            + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {canonical_json(v)}" for k, v in items)
            + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, float):
        msg = "floats have engine-specific JSON text; generate integers or strings"
        raise TypeError(msg)
    return json.dumps(value, ensure_ascii=False)


def maybe(rng: random.Random, value: Any, null_ratio: float = 0.2) -> Any:
    return None if rng.random() < null_ratio else value


def money(rng: random.Random, low: int = 100, high: int = 500_000) -> Decimal:
    """A two-place decimal from cents, so no binary float ever touches it."""
    return Decimal(rng.randint(low, high)).scaleb(-2)


def instant(rng: random.Random, base: datetime, spread_days: int = 400) -> datetime:
    """A timezone-aware instant with microseconds, in UTC."""
    offset = timedelta(
        seconds=rng.randint(-spread_days * 86400, spread_days * 86400), microseconds=rng.randint(0, 999_999)
    )
    return (base + offset).astimezone(UTC)


def large_text(rng: random.Random, size: int = LARGE_TEXT_BYTES) -> str:
    """Low-compressibility unicode text of at least ``size`` UTF-8 bytes."""
    alphabet = "abcdefghijklmnopqrstuvwxyzäöüßéèñçøåæ ✓€中文"
    chunks: list[str] = []
    length = 0
    while length < size:
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(3, 12)))
        chunks.append(word)
        length += len(word.encode()) + 1
    return " ".join(chunks)


def person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def email_local(first: str, last: str) -> str:
    """ASCII local part from the name (the key suffix added by the writer keeps it unique)."""
    raw = f"{first}.{last}".lower()
    kept = "".join(ch for ch in raw if ch.isascii() and (ch.isalnum() or ch == "."))
    return kept.strip(".") or "customer"


def preferences(rng: random.Random) -> dict[str, Any]:
    return {
        "newsletter": rng.random() < 0.5,
        "language": rng.choice(["de", "en", "fr", "ja", "pl", "pt"]),
        "channels": rng.sample(["email", "sms", "push", "post"], rng.randint(0, 3)),
        "quiet_hours": {"from": rng.randint(18, 23), "to": rng.randint(5, 9)},
        "nickname": rng.choice(FIRST_NAMES),
    }


def address(rng: random.Random) -> dict[str, Any]:
    first, last = person(rng)
    return {
        "name": f"{first} {last}",
        "street": f"{rng.randint(1, 300)} {rng.choice(LAST_NAMES)}straße",
        "city": rng.choice(CITIES),
        "postcode": f"{rng.randint(1000, 99999)}",
        "country": rng.choice(["CH", "BR", "PL", "JP", "IS", "CA", "TR", "IE"]),
    }


def birth_date(rng: random.Random) -> date:
    return date(1940, 1, 1) + timedelta(days=rng.randint(0, 365 * 65))
