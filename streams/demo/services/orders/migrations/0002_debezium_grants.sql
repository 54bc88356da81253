-- Least privilege for the Debezium login (created with its password by migrate.py first).
--
-- What these grants do NOT protect. REPLICATION SLAVE lets the login read the binlog, and the
-- binlog carries every row change of every table of every database on this server (row format,
-- full images) and, by default (binlog_annotate_row_events), each statement's text: the changes
-- of payment_attempts included. The table-level SELECT grants below only limit what snapshots
-- and queries can read. So treat this login's password like a full read of the server's
-- changes, and keep data it must never see on another server.
-- Global privileges (MariaDB cannot scope these to a schema):
--   RELOAD            FLUSH TABLES WITH READ LOCK for a consistent initial snapshot
--   SHOW DATABASES    list databases during the snapshot
--   REPLICATION SLAVE read the binlog (COM_BINLOG_DUMP_GTID)
--   BINLOG MONITOR    SHOW MASTER STATUS / SHOW BINARY LOGS; since 10.5.2 it is what the
--                     historical REPLICATION CLIENT grants (an alias), named explicitly here.
-- REPLICATION SLAVE ADMIN (START/STOP SLAVE, CHANGE MASTER) is not needed by a binlog reader.
GRANT RELOAD, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'debezium_orders'@'%';
-- Table-level SELECT on captured tables only: payment_attempts cannot be queried (its changes
-- are still in the binlog, see above).
GRANT SELECT ON orders TO 'debezium_orders'@'%';
GRANT SELECT ON order_lines TO 'debezium_orders'@'%';
GRANT SELECT ON outbox TO 'debezium_orders'@'%';
-- Incremental snapshots write open/close watermarks into the signal table.
GRANT SELECT, INSERT ON changefeed_signal TO 'debezium_orders'@'%';
