"""Consistency tokens: an opaque, versioned string naming a source and a commit position in it.

A writer gets one right after its COMMIT (``streams.consistency.drivers``) and hands it to a reader
in another service, who waits until the sink has applied that position (``streams.consistency.wait``).

Format (version 1; callers treat it as opaque, only this module reads it)::

    cf1:<source>:pg:<system identifier>:<LSN as X/Y>
    cf1:<source>:mariadb:<server id>:<domain-server-seq>[,<domain-server-seq>...]

``source`` is the name of the connector that captures the writer's database (``customers``). The
server id tells two databases behind one name apart: PostgreSQL's ``system_identifier``, MariaDB's
``@@server_id``. A PostgreSQL position is an LSN at or after the end of the writer's commit record;
a MariaDB one is a GTID per replication domain, and positions compare per domain by sequence number
(the order the sink's guard and the binlog use: within a domain, sequence numbers grow in commit
order on one primary).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from streams.errors import PermanentError

VERSION = "cf1"
_SOURCE = re.compile(r"[A-Za-z0-9_.\-]{1,200}")
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
_GTID = re.compile(r"(\d{1,10})-(\d{1,10})-(\d{1,20})")
_MAX64 = 2**64 - 1


class TokenError(PermanentError):
    """A malformed consistency token (the gRPC service answers INVALID_ARGUMENT with this text)."""


class Kind(enum.StrEnum):
    POSTGRES = "pg"
    MARIADB = "mariadb"


@dataclass(frozen=True)
class Token:
    """A parsed token: ``position`` maps a replication domain to a sequence number (PostgreSQL: the
    single domain 0 and the LSN as an integer)."""

    source: str
    kind: Kind
    server_id: int
    position: Mapping[int, int]
    origin: Mapping[int, int]  # MariaDB: the GTID's server id per domain (kept for the text form)

    def __str__(self) -> str:
        return format_token(self)


def lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    match = _LSN.fullmatch(text.strip())
    if match is None:
        msg = f"not a PostgreSQL LSN (X/Y in hex): {text!r}"
        raise TokenError(msg)
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def parse_gtids(text: str) -> tuple[dict[int, int], dict[int, int]]:
    """``0-1-1128,1-1-5`` → ({domain: seq}, {domain: server id}); one GTID per domain."""
    position: dict[int, int] = {}
    origin: dict[int, int] = {}
    for part in text.split(","):
        match = _GTID.fullmatch(part.strip())
        if match is None:
            msg = f"not a MariaDB GTID (domain-server-sequence): {part!r}"
            raise TokenError(msg)
        domain, server, seq = (int(g) for g in match.groups())
        if domain in position:
            msg = f"GTID domain {domain} named twice in {text!r}"
            raise TokenError(msg)
        if seq > _MAX64 or domain > 2**32 - 1 or server > 2**32 - 1:
            msg = f"GTID out of range: {part!r}"
            raise TokenError(msg)
        position[domain], origin[domain] = seq, server
    if not position:
        msg = "a MariaDB token needs at least one GTID"
        raise TokenError(msg)
    return position, origin


def postgres_token(source: str, system_identifier: int, lsn: int) -> Token:
    return Token(_checked_source(source), Kind.POSTGRES, system_identifier, {0: lsn}, {})


def mariadb_token(source: str, server_id: int, gtids: str) -> Token:
    position, origin = parse_gtids(gtids)
    return Token(_checked_source(source), Kind.MARIADB, server_id, position, origin)


def _checked_source(source: str) -> str:
    if not _SOURCE.fullmatch(source):
        msg = f"source name must be letters, digits, '_', '.', '-': {source!r}"
        raise TokenError(msg)
    return source


def format_token(token: Token) -> str:
    if token.kind is Kind.POSTGRES:
        where = lsn_text(token.position[0])
    else:
        where = ",".join(f"{d}-{token.origin.get(d, 0)}-{s}" for d, s in sorted(token.position.items()))
    return f"{VERSION}:{token.source}:{token.kind.value}:{token.server_id}:{where}"


def parse_token(text: str) -> Token:
    """The token, or ``TokenError`` saying what is wrong with it."""
    if not isinstance(text, str) or len(text) > 4096:
        msg = "a token is a string of at most 4096 characters"
        raise TokenError(msg)
    parts = text.strip().split(":")
    if len(parts) != 5:
        msg = f"a token has 5 ':'-separated fields ({VERSION}:source:kind:server:position): {text!r}"
        raise TokenError(msg)
    version, source, kind, server, where = parts
    if version != VERSION:
        msg = f"unsupported token version {version!r} (this server reads {VERSION})"
        raise TokenError(msg)
    if not server.isdigit() or int(server) > _MAX64:
        msg = f"server id must be an unsigned integer: {server!r}"
        raise TokenError(msg)
    if kind == Kind.POSTGRES.value:
        return postgres_token(source, int(server), parse_lsn(where))
    if kind == Kind.MARIADB.value:
        return mariadb_token(source, int(server), where)
    msg = f"unknown source kind {kind!r} (pg or mariadb)"
    raise TokenError(msg)


def reached(applied: Mapping[int, int], wanted: Mapping[int, int]) -> bool:
    """Whether an applied position (per domain) is at or past every domain the token names."""
    return all(applied.get(domain, -1) >= seq for domain, seq in wanted.items())


def position_text(kind: Kind, position: Mapping[int, int]) -> str:
    """An applied position as the token writes it (``-`` when nothing is known)."""
    if not position:
        return "-"
    if kind is Kind.POSTGRES:
        return lsn_text(position.get(0, 0))
    return ",".join(f"{d}-{s}" for d, s in sorted(position.items()))
