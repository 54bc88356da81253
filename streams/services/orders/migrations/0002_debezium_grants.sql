-- Least privilege for the Debezium login (created with its password by migrate.py first).
-- Global privileges (MariaDB cannot scope these to a schema):
--   RELOAD            FLUSH TABLES WITH READ LOCK for a consistent initial snapshot
--   SHOW DATABASES    list databases during the snapshot
--   REPLICATION SLAVE read the binlog (COM_BINLOG_DUMP_GTID)
--   BINLOG MONITOR    SHOW MASTER STATUS / SHOW BINARY LOGS; since 10.5.2 it is what the
--                     historical REPLICATION CLIENT grants (an alias), named explicitly here.
-- REPLICATION SLAVE ADMIN (START/STOP SLAVE, CHANGE MASTER) is not needed by a binlog reader.
GRANT RELOAD, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'debezium_orders'@'%';
-- Table-level SELECT on captured tables only; payment_attempts stays invisible.
GRANT SELECT ON orders TO 'debezium_orders'@'%';
GRANT SELECT ON order_lines TO 'debezium_orders'@'%';
GRANT SELECT ON outbox TO 'debezium_orders'@'%';
-- Incremental snapshots write open/close watermarks into the signal table.
GRANT SELECT, INSERT ON changefeed_signal TO 'debezium_orders'@'%';
