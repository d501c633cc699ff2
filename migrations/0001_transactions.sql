-- Transactions the homeserver delivered; a repeated id is answered 200 and
-- not processed again, also across restarts.
CREATE TABLE IF NOT EXISTS appservice_transactions (
    txn_id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL,
    event_count BIGINT NOT NULL
);
