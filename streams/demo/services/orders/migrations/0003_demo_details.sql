-- Richer orders for the demo: decimals, unicode, NULLs, JSON, a large text column, timestamps.
-- New columns are nullable (BACKWARD-compatible schema change). ADD COLUMN IF NOT EXISTS keeps
-- the file rerunnable: MariaDB autocommits DDL, so a half-applied file must be safe to rerun.
-- One ALTER per table so Debezium's schema history parses one change per statement.
-- TIMESTAMP(6) is stored in UTC and converted with the session time zone: it is the MariaDB
-- type that means an instant (DATETIME would be a wall-clock value without a zone).
ALTER TABLE orders
    ADD COLUMN IF NOT EXISTS total            DECIMAL(12,2) NULL,
    ADD COLUMN IF NOT EXISTS shipping_address JSON NULL,
    ADD COLUMN IF NOT EXISTS gift_message     MEDIUMTEXT NULL,
    ADD COLUMN IF NOT EXISTS promised_at      TIMESTAMP(6) NULL DEFAULT NULL;

ALTER TABLE order_lines
    ADD COLUMN IF NOT EXISTS unit_price   DECIMAL(12,2) NULL,
    ADD COLUMN IF NOT EXISTS description  VARCHAR(255) NULL;
