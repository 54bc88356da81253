"""Token functions per source driver: call right after COMMIT, on the connection that committed.

PostgreSQL: ``pg_current_wal_insert_lsn()`` read after COMMIT on the same connection is at or past
the end of the commit record of the transaction just committed (WAL is inserted in order, and
our commit record was inserted before COMMIT returned). ``pg_current_xact_id()`` is no position,
and the insert LSN read *inside* the transaction is below its commit record, so neither is used.
The result may be past our commit (other sessions' WAL in between): a wait then also covers
their transactions, never fewer.

MariaDB: ``@@last_gtid`` is the GTID the session's last transaction committed with. It is empty
when the session has committed nothing that reached the binlog (a read-only transaction): then
the session has nothing to wait for and the current binlog position (``@@gtid_binlog_pos``) is
used, which is at or past anything the caller could have observed.
"""

from __future__ import annotations

from typing import Any

import psycopg

from streams.consistency.token import Token, TokenError, mariadb_token, postgres_token

_PG_SQL = (
    "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn, (SELECT system_identifier FROM pg_control_system())"
)


def psycopg_token(conn: psycopg.Connection[Any], source: str) -> Token:
    """The token of the transaction ``conn`` just committed (call it after ``conn.commit()``).

    Runs outside any transaction: in autocommit mode directly, otherwise in a transaction of its
    own that it ends, so the caller's next statement starts clean."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        msg = "call psycopg_token after COMMIT: the connection is inside a transaction"
        raise TokenError(msg)
    row = conn.execute(_PG_SQL).fetchone()
    if not conn.autocommit:
        conn.rollback()
    assert row is not None
    return postgres_token(source, int(row[1]), int(row[0]))


def postgres_current(conn: psycopg.Connection[Any], source: str) -> Token:
    """The source's current position, for scripts: every commit so far is at or below it."""
    row = conn.execute(_PG_SQL).fetchone()
    if not conn.autocommit:
        conn.rollback()
    assert row is not None
    return postgres_token(source, int(row[1]), int(row[0]))


def pymysql_token(conn: Any, source: str) -> Token:
    """The token of the transaction ``conn`` (a pymysql connection) just committed."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@last_gtid, @@server_id, @@gtid_binlog_pos")
        last, server_id, binlog_pos = cur.fetchone()
    if not conn.get_autocommit():
        conn.commit()  # ends the read's own (empty) transaction
    gtids = last or binlog_pos
    if not gtids:
        msg = "the MariaDB server has no GTID yet (nothing was ever binlogged)"
        raise TokenError(msg)
    return mariadb_token(source, int(server_id), str(gtids))


def mariadb_current(conn: Any, source: str) -> Token:
    """The source's current binlog position (every domain), for scripts."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@gtid_binlog_pos, @@server_id")
        binlog_pos, server_id = cur.fetchone()
    if not conn.get_autocommit():
        conn.commit()
    if not binlog_pos:
        msg = "the MariaDB server has no GTID yet (nothing was ever binlogged)"
        raise TokenError(msg)
    return mariadb_token(source, int(server_id), str(binlog_pos))
