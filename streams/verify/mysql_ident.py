"""The one place MariaDB identifiers are quoted (pymysql has no identifier quoting)."""

from __future__ import annotations

from streams.errors import ConfigError


def mysql_ident(*names: str) -> str:
    """Backtick-quote each name and join with ``.``; names containing a backtick or NUL are refused.

    Refusing (instead of doubling the backtick) keeps the rule simple to audit: no name that
    could close the quote ever reaches SQL text.
    """
    out = []
    for name in names:
        if not name or "`" in name or "\x00" in name:
            msg = f"MariaDB identifier {name!r} must be non-empty and contain no backtick or NUL"
            raise ConfigError(msg)
        out.append(f"`{name}`")
    return ".".join(out)
