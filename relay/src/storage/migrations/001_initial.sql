-- The relay's first schema. Everything here is public keys, opaque ciphertext
-- and routing: no plaintext, and for sealed messages no sender.

-- One row per (account, device): registered on the device's first login.
CREATE TABLE devices (
    account_id      BLOB    NOT NULL,   -- 20 bytes
    device_id       INTEGER NOT NULL,   -- 1..=127
    aci             BLOB    NOT NULL,   -- first 16 bytes of account_id (ServiceId index)
    identity_key    BLOB    NOT NULL,   -- libsignal IdentityKey, 33 bytes
    registration_id INTEGER NOT NULL DEFAULT 0,
    access_key      BLOB,               -- 16 bytes once set
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (account_id, device_id)
) WITHOUT ROWID;
CREATE INDEX devices_by_aci ON devices (aci);

-- The signed EC prekey (kind 0) and the last-resort Kyber key (kind 1): one each.
CREATE TABLE signed_prekeys (
    account_id BLOB    NOT NULL,
    device_id  INTEGER NOT NULL,
    kind       INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    public_key BLOB    NOT NULL,
    signature  BLOB    NOT NULL,
    PRIMARY KEY (account_id, device_id, kind)
) WITHOUT ROWID;

-- One-time EC (kind 0, no signature) and Kyber (kind 1) prekeys, each handed out once.
CREATE TABLE one_time_prekeys (
    account_id BLOB    NOT NULL,
    device_id  INTEGER NOT NULL,
    kind       INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    public_key BLOB    NOT NULL,
    signature  BLOB    NOT NULL,
    PRIMARY KEY (account_id, device_id, kind, key_id)
) WITHOUT ROWID;

-- Mailboxes. AUTOINCREMENT so an ID is never reused: an old Ack can never
-- delete a newer message.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    BLOB    NOT NULL,
    device_id     INTEGER NOT NULL,
    priority      INTEGER NOT NULL,
    sealed        INTEGER NOT NULL,
    stored_at_ms  INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    envelope      BLOB    NOT NULL
);
CREATE INDEX messages_by_mailbox ON messages (account_id, device_id, priority, id);
CREATE INDEX messages_by_expiry ON messages (expires_at_ms);

-- Attachment blobs live in files named by their address; this is their metadata.
CREATE TABLE attachments (
    address       BLOB    PRIMARY KEY, -- SHA-256 of the encrypted blob
    size          INTEGER NOT NULL,
    stored_at_ms  INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX attachments_by_expiry ON attachments (expires_at_ms);
