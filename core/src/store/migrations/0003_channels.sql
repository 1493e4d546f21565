-- Schema 3: committee channels.

-- Messages in channels, both directions. `sender` is the author's account ID.
CREATE TABLE channel_messages (
    id INTEGER PRIMARY KEY,
    channel_id BLOB NOT NULL,
    envelope_id BLOB NOT NULL,
    sender BLOB NOT NULL,
    outgoing INTEGER NOT NULL,
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    stored_at INTEGER NOT NULL
);
CREATE INDEX channel_messages_by_channel ON channel_messages (channel_id, id);

-- A multi-recipient sealed message (one upload the relay fans out). For such
-- rows `recipient` holds the channel ID and `recipient_device` is 0.
ALTER TABLE outbox ADD COLUMN multi INTEGER NOT NULL DEFAULT 0;
