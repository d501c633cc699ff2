-- Watching: the checks failing at the last run, per target, since when (an
-- alert is sent when this changes, not while it persists), and each admin's
-- management room, where alerts go.
CREATE TABLE IF NOT EXISTS failing_checks (
    target TEXT NOT NULL,
    check_id TEXT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (target, check_id)
);

CREATE TABLE IF NOT EXISTS management_rooms (
    user_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL
);
