-- Room events of a transaction, written with its id before the homeserver
-- gets its 200, and deleted once the bot has handled them: a doctor killed
-- in between handles them after its restart (the homeserver never re-sends
-- a transaction it got a 200 for).
CREATE TABLE IF NOT EXISTS inbox (
    event_id TEXT PRIMARY KEY,
    txn_id TEXT NOT NULL,
    event TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
