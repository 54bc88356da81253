-- The orders service's tables. Business rows and their outbox row are written in one transaction.
CREATE TABLE IF NOT EXISTS orders (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    customer_id  BIGINT NOT NULL,
    status       VARCHAR(32) NOT NULL DEFAULT 'placed',
    total_cents  BIGINT NOT NULL DEFAULT 0,
    currency     CHAR(3) NOT NULL DEFAULT 'EUR',
    created_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS order_lines (
    order_id          BIGINT UNSIGNED NOT NULL,
    line_no           INT NOT NULL,
    sku               VARCHAR(64) NOT NULL,
    quantity          INT NOT NULL,
    unit_price_cents  BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no),
    CONSTRAINT fk_order_lines_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
) ENGINE=InnoDB;

-- Transactional outbox, routed by Debezium's EventRouter to outbox.event.<aggregatetype>.
CREATE TABLE IF NOT EXISTS outbox (
    id             CHAR(36) NOT NULL PRIMARY KEY,
    aggregatetype  VARCHAR(255) NOT NULL,
    aggregateid    VARCHAR(255) NOT NULL,
    type           VARCHAR(255) NOT NULL,
    payload        JSON NOT NULL,
    created_at     TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

-- Internal data: not captured, and the Debezium login may not SELECT it; its changes are in
-- the binlog it reads all the same (see 0002's comment).
CREATE TABLE IF NOT EXISTS payment_attempts (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    order_id    BIGINT UNSIGNED NOT NULL,
    card_token  VARCHAR(255) NOT NULL,
    created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;

-- Debezium's signalling table (incremental snapshots). Shape fixed by Debezium.
CREATE TABLE IF NOT EXISTS changefeed_signal (
    id    VARCHAR(42) NOT NULL PRIMARY KEY,
    type  VARCHAR(32) NOT NULL,
    data  VARCHAR(2048) NULL
) ENGINE=InnoDB;
