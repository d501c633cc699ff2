-- The bot's own room for the delivery probe: an event sent there must come
-- back in a transaction. Created once, reused on every start.
CREATE TABLE IF NOT EXISTS probe_room (
    user_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL
);
