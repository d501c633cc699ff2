-- Watching, continued: every change announced (for `history`), the rooms
-- whose admin said `watch off`, and what each target looked like when it
-- was last healthy (fingerprints of its files, tokens and homeserver, never
-- the values), to say what changed when it breaks.
CREATE TABLE IF NOT EXISTS watch_history (
    target TEXT NOT NULL,
    at BIGINT NOT NULL,
    change TEXT NOT NULL,
    checks TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS muted_rooms (
    room_id TEXT PRIMARY KEY
);

CREATE TABLE IF NOT EXISTS healthy_fingerprints (
    target TEXT PRIMARY KEY,
    fingerprints TEXT NOT NULL
);
