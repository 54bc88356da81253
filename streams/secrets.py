"""Secrets files and password verifiers: the one module that reads and writes them.

Kafka Connect reads ``connect-secrets.properties`` through its ``file`` config provider (entries
referenced as ``${file:<path>:<key>}``), so the database passwords live in exactly one place
(mode 0600) and connector configs only name them; the workers' sink password lives in its own
file the same way. Databases receive pre-hashed verifiers, so the plaintext never reaches a
server statement log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

PASSWORD_KEYS = ("customers.password", "orders.password")
# RFC 7677 default; PostgreSQL's own scram_iterations default.
_SCRAM_ITERATIONS = 4096


def read_properties(path: Path) -> dict[str, str]:
    """Parse the simple ``key=value`` subset of Java properties this file uses."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


CONNECT_HEADER = "Written by `changefeed services migrate`; read by Kafka Connect's file provider."


def ensure_secrets(
    path: Path, keys: Iterable[str] = PASSWORD_KEYS, header: str = CONNECT_HEADER
) -> dict[str, str]:
    """Return the secrets, first adding a random password (URL-safe, no escaping) for any missing key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    existing = read_properties(path) if path.exists() else {}
    missing = [k for k in keys if not existing.get(k)]
    if missing or not path.exists():
        merged = {**existing, **{k: secrets.token_urlsafe(24) for k in missing}}
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"# {header}\n")
            fh.writelines(f"{k}={v}\n" for k, v in sorted(merged.items()))
        tmp.replace(path)
        existing = merged
    path.chmod(0o600)
    return existing


def scram_sha256(password: str, *, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """A PostgreSQL SCRAM-SHA-256 verifier, accepted verbatim by ``CREATE ROLE ... PASSWORD``."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def mysql_native_hash(password: str) -> str:
    """MariaDB's mysql_native_password hash, for ``IDENTIFIED BY PASSWORD '*...'``."""
    inner = hashlib.sha1(password.encode()).digest()  # noqa: S324 - the protocol's own hash
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


def write_properties(path: Path, values: dict[str, str]) -> Path:
    """A properties file only this user can read (its folder too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{key}={value}\n" for key, value in values.items())
    return path


def placeholder(path: Path, key: str) -> str:
    """Connect's reference to one entry of a secrets file."""
    return f"${{file:{path}:{key}}}"
