-- The bot's device's access token, reused on every start: a login per
-- start would leave one more valid token behind each time. A secret, like
-- the rest of this database.
ALTER TABLE bot_device ADD COLUMN access_token TEXT;
