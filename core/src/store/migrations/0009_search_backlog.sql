-- Schema 9: channel messages are indexed for search in batches. Indexing
-- each message as it arrived wrote a new FTS5 segment with every receive and
-- doubled the pages each commit encrypts and writes. A new message now only
-- joins the backlog; the backlog goes into the index before every search (so
-- a search still sees every message) and now and then in between.
CREATE TABLE channel_search_backlog (id INTEGER PRIMARY KEY);

DROP TRIGGER channel_search_insert;
DROP TRIGGER channel_search_delete;
DROP TRIGGER channel_search_update;

CREATE TRIGGER channel_search_insert AFTER INSERT ON channel_messages BEGIN
    INSERT INTO channel_search_backlog (id) VALUES (new.id);
END;
-- An indexed message leaves the index; one still waiting leaves the backlog.
CREATE TRIGGER channel_search_delete AFTER DELETE ON channel_messages BEGIN
    INSERT INTO channel_search (channel_search, rowid, body)
        SELECT 'delete', old.id, old.body
        WHERE NOT EXISTS (SELECT 1 FROM channel_search_backlog WHERE id = old.id);
    DELETE FROM channel_search_backlog WHERE id = old.id;
END;
-- A message still waiting is indexed with whatever text it has by then.
CREATE TRIGGER channel_search_update AFTER UPDATE OF body ON channel_messages
WHEN NOT EXISTS (SELECT 1 FROM channel_search_backlog WHERE id = old.id) BEGIN
    INSERT INTO channel_search (channel_search, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO channel_search (rowid, body) VALUES (new.id, new.body);
END;
