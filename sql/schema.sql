-- Orders Lab schema. Idempotent: applying it again changes nothing.
CREATE DATABASE IF NOT EXISTS ordersdb CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE ordersdb;

CREATE TABLE IF NOT EXISTS orders (
    order_id      CHAR(36)      NOT NULL,
    customer_name VARCHAR(100)  NOT NULL,
    product       VARCHAR(100)  NOT NULL,
    quantity      INT           NOT NULL,
    amount        DECIMAL(12,2) NOT NULL,
    created_at    DATETIME(6)   NOT NULL COMMENT 'UTC',
    PRIMARY KEY (order_id),
    INDEX idx_orders_created_at (created_at),
    CONSTRAINT chk_orders_quantity CHECK (quantity BETWEEN 1 AND 1000),
    CONSTRAINT chk_orders_amount CHECK (amount > 0 AND amount <= 1000000.00)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
