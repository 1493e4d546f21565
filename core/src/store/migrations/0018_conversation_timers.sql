-- Schema 18: disappearing 1:1 messages.

-- When every device deletes the message, ms since the epoch; NULL never. The
-- index holds only messages that expire: a text without a timer costs no
-- index write.
ALTER TABLE messages ADD COLUMN expires_at INTEGER;
CREATE INDEX messages_by_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- Each 1:1 conversation's disappearing timer (seconds, 0 off) and the
-- version of that setting, which either side raises when it changes it.
CREATE TABLE conversation_timers (
    peer BLOB PRIMARY KEY,
    secs INTEGER NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
