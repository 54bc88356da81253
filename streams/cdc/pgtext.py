"""PostgreSQL values Python's types cannot hold, carried as the text PostgreSQL parses them from.

``datetime``/``date`` stop at years 1..9999 and ``time`` at 23:59:59.999999, while PostgreSQL's
``timestamp[tz]``/``date`` also hold ``infinity``, ``-infinity``, BC dates and years up to 294276
(``date``: 5874897), and ``time`` holds ``24:00:00``. Such a value becomes a ``PgLiteral``: the
input text of the sink column's type. Calendar arithmetic is done on integers (proleptic
Gregorian, astronomical years: year 0 is 1 BC), like PostgreSQL's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

MICROS_PER_DAY = 86_400_000_000
_DATE_MIN_DAYS = date.min.toordinal() - date(1970, 1, 1).toordinal()  # -719162
_DATE_MAX_DAYS = date.max.toordinal() - date(1970, 1, 1).toordinal()  # 2932896


class PgLiteral(str):
    """A value given as PostgreSQL input text for the sink column's own type."""

    __slots__ = ()


INFINITY = PgLiteral("infinity")
MINUS_INFINITY = PgLiteral("-infinity")


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(astronomical year, month, day) of a day count since 1970-01-01, for any year."""
    z = days + 719468
    era = z // 146097  # floor division: Python rounds down where C needs the correction
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def in_python_range(days: int) -> bool:
    return _DATE_MIN_DAYS <= days <= _DATE_MAX_DAYS


def _year_text(year: int) -> tuple[str, str]:
    """PostgreSQL writes year 0 as 0001 BC, year -43 as 0044 BC."""
    return (f"{year:04d}", "") if year > 0 else (f"{1 - year:04d}", " BC")


def date_text(days: int) -> PgLiteral:
    year, month, day = civil_from_days(days)
    y, era = _year_text(year)
    return PgLiteral(f"{y}-{month:02d}-{day:02d}{era}")


def timestamp_text(micros: int, zone: str = "") -> PgLiteral:
    """``zone`` ``"+00"`` for an instant in UTC (timestamptz), ``""`` for a wall clock."""
    days, rest = divmod(micros, MICROS_PER_DAY)
    year, month, day = civil_from_days(days)
    y, era = _year_text(year)
    clock = time_text(rest)
    return PgLiteral(f"{y}-{month:02d}-{day:02d} {clock}{zone}{era}")


def time_text(micros: int) -> PgLiteral:
    """``HH:MM:SS[.ffffff]``; 86 400 000 000 µs is ``24:00:00``, which ``time`` accepts."""
    seconds, frac = divmod(micros, 1_000_000)
    text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return PgLiteral(f"{text}.{frac:06d}" if frac else text)


def iso_extended(value: str) -> PgLiteral:
    """Java's ISO-8601 with a signed or zero year (``-0043-03-15T12:00:00Z``, ``+12345-…``)."""
    sign = -1 if value.startswith("-") else 1
    body = value[1:] if value[:1] in "+-" else value
    year_text, _, rest = body.partition("-")
    year = sign * int(year_text)
    y, era = _year_text(year)
    return PgLiteral(f"{y}-{rest.replace('T', ' ', 1)}{era}")


def element_text(value: Any) -> str | None:
    """One array element (or scalar) as PostgreSQL input text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value // timedelta(microseconds=1)} microseconds"
    if isinstance(value, Decimal | int | float):
        return str(value)
    return str(value)


def _quoted(text: str | None) -> str:
    if text is None:
        return "NULL"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(elements: Iterable[Any]) -> PgLiteral:
    """A one-dimensional PostgreSQL array literal; every element quoted, ``NULL`` unquoted."""
    return PgLiteral("{" + ",".join(_quoted(element_text(e)) for e in elements) + "}")
