-- Schema 13: session records move into a rowid table, found by a unique index
-- on the address. A session record under SPQR is often 4.5 to 8.5 KB while
-- chunks of a new key are in flight. Kept in the b-tree of their primary key
-- alone (WITHOUT ROWID), such records spill to overflow pages beyond about
-- 1 KB, so every write of one took three pages; a rowid table keeps up to
-- about 4 KB on the leaf and writes it in two. Records are rewritten in place
-- (an upsert), so the index is written only for a new address.

CREATE TABLE sessions_by_row (
    id INTEGER PRIMARY KEY,
    address TEXT NOT NULL UNIQUE,
    record BLOB NOT NULL
);
INSERT INTO sessions_by_row (address, record) SELECT address, record FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_by_row RENAME TO sessions;
