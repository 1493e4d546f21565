-- Schema 6: channel messages — references, replies, edits, deletes,
-- attachments, disappearing timers, read markers and full-text search.

-- The author's 16-byte ID for the message: with `sender`, the name every
-- member uses for it in replies, edits and deletes. Older rows get a random one.
ALTER TABLE channel_messages ADD COLUMN message_ref BLOB;
UPDATE channel_messages SET message_ref = randomblob(16) WHERE message_ref IS NULL;
CREATE UNIQUE INDEX channel_messages_by_ref ON channel_messages (channel_id, sender, message_ref);
-- The message this one replies to: its author and reference.
ALTER TABLE channel_messages ADD COLUMN reply_author BLOB;
ALTER TABLE channel_messages ADD COLUMN reply_ref BLOB;
-- The author's clock at the latest edit applied; NULL if never edited.
ALTER TABLE channel_messages ADD COLUMN edited_at INTEGER;
-- When every device deletes the message, ms since the epoch; NULL never.
ALTER TABLE channel_messages ADD COLUMN expires_at INTEGER;
CREATE INDEX channel_messages_by_expiry ON channel_messages (expires_at)
    WHERE expires_at IS NOT NULL;

-- A message's attachments: where each blob is and the key that opens it.
CREATE TABLE channel_attachments (
    message_id INTEGER NOT NULL REFERENCES channel_messages (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    address BLOB NOT NULL,
    key BLOB NOT NULL,
    digest BLOB NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    file_name TEXT NOT NULL,
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;

-- Messages deleted by their authors (before or after they arrived): one that
-- arrives after its delete is dropped, and a reply can say its quote was
-- deleted. Holds no text; forgotten at keep_until.
CREATE TABLE channel_tombstones (
    channel_id BLOB NOT NULL,
    author BLOB NOT NULL,
    message_ref BLOB NOT NULL,
    keep_until INTEGER NOT NULL,
    PRIMARY KEY (channel_id, author, message_ref)
) WITHOUT ROWID;
CREATE INDEX channel_tombstones_by_age ON channel_tombstones (keep_until);

-- The latest edit that arrived before its message, applied when the message
-- comes; deleted at expires_at if it never does.
CREATE TABLE channel_pending_edits (
    channel_id BLOB NOT NULL,
    author BLOB NOT NULL,
    message_ref BLOB NOT NULL,
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, author, message_ref)
) WITHOUT ROWID;
CREATE INDEX channel_pending_edits_by_expiry ON channel_pending_edits (expires_at);

-- This device's read marker in each channel: the last message read (local ID).
CREATE TABLE channel_read_markers (
    channel_id BLOB PRIMARY KEY,
    last_read_id INTEGER NOT NULL
) WITHOUT ROWID;

-- Full-text index of channel message bodies, over channel_messages (no second
-- copy of the text) and kept in step by the triggers below. With
-- secure-delete, a deleted row's tokens are removed from the index pages
-- rather than masked by a delete marker.
CREATE VIRTUAL TABLE channel_search USING fts5 (
    body,
    content = 'channel_messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
INSERT INTO channel_search (channel_search, rank) VALUES ('secure-delete', 1);
INSERT INTO channel_search (channel_search) VALUES ('rebuild');

CREATE TRIGGER channel_search_insert AFTER INSERT ON channel_messages BEGIN
    INSERT INTO channel_search (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER channel_search_delete AFTER DELETE ON channel_messages BEGIN
    INSERT INTO channel_search (channel_search, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER channel_search_update AFTER UPDATE OF body ON channel_messages BEGIN
    INSERT INTO channel_search (channel_search, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO channel_search (rowid, body) VALUES (new.id, new.body);
END;
