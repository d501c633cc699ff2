-- The bot's device for encrypted rooms, reused on every start so clients
-- see one device, not a new unverified one per restart.
CREATE TABLE IF NOT EXISTS bot_device (
    user_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL
);

-- Command events already handled, whichever way they came (a transaction,
-- or decrypted from sync), so each runs exactly once, also after a restart.
CREATE TABLE IF NOT EXISTS handled_events (
    event_id TEXT PRIMARY KEY,
    handled_at BIGINT NOT NULL
);
