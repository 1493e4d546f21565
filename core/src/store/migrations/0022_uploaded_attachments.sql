-- Schema 22: attachments this device uploaded, each with the key that lets it
-- delete the blob at the relay when the account is deleted (the relay holds
-- only the key's SHA-256, and no account). Forgotten once the relay's copy
-- has expired.
CREATE TABLE uploaded_attachments (
    address       BLOB    PRIMARY KEY,  -- SHA-256 of the encrypted blob
    delete_key    BLOB    NOT NULL,     -- 32 random bytes
    expires_at_ms INTEGER NOT NULL      -- when the relay drops it anyway
) WITHOUT ROWID;
