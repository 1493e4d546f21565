-- The relay's PostgreSQL schema: the SQLite schema's tables (migrations
-- 001-004 there), plus per-mailbox message counts for the quota check. As
-- there: public keys, opaque ciphertext and routing, no plaintext, and for
-- sealed messages no sender.

CREATE TABLE devices (
    account_id      BYTEA   NOT NULL,   -- 20 bytes
    device_id       INTEGER NOT NULL,   -- 1..=127
    aci             BYTEA   NOT NULL,   -- first 16 bytes of account_id
    identity_key    BYTEA   NOT NULL,
    registration_id BIGINT  NOT NULL DEFAULT 0,
    access_key      BYTEA,
    created_at_ms   BIGINT  NOT NULL,
    PRIMARY KEY (account_id, device_id)
);
CREATE INDEX devices_by_aci ON devices (aci);

CREATE TABLE signed_prekeys (
    account_id BYTEA    NOT NULL,
    device_id  INTEGER  NOT NULL,
    kind       SMALLINT NOT NULL,
    key_id     BIGINT   NOT NULL,
    public_key BYTEA    NOT NULL,
    signature  BYTEA    NOT NULL,
    PRIMARY KEY (account_id, device_id, kind)
);

CREATE TABLE one_time_prekeys (
    account_id BYTEA    NOT NULL,
    device_id  INTEGER  NOT NULL,
    kind       SMALLINT NOT NULL,
    key_id     BIGINT   NOT NULL,
    public_key BYTEA    NOT NULL,
    signature  BYTEA    NOT NULL,
    PRIMARY KEY (account_id, device_id, kind, key_id)
);

-- IDs come from a sequence, never reused: an old Ack can never delete a newer
-- message. They are taken only under the relay's write lock (see
-- relay/src/storage/postgres/batch.rs), so commit order is ID order on every node.
CREATE SEQUENCE messages_id_seq AS BIGINT;
CREATE TABLE messages (
    id            BIGINT   PRIMARY KEY,
    account_id    BYTEA    NOT NULL,
    device_id     INTEGER  NOT NULL,
    priority      SMALLINT NOT NULL,
    sealed        BOOLEAN  NOT NULL,
    stored_at_ms  BIGINT   NOT NULL,
    expires_at_ms BIGINT   NOT NULL,
    envelope      BYTEA    NOT NULL
);
CREATE INDEX messages_by_mailbox ON messages (account_id, device_id, priority, id);
CREATE INDEX messages_by_expiry ON messages (expires_at_ms);
CREATE INDEX messages_identified ON messages (account_id, device_id) WHERE NOT sealed;

-- Messages per mailbox, kept in the transaction that changes the mailbox:
-- the quota check on every send reads one row, not a count of the mailbox.
CREATE TABLE mailbox_counts (
    account_id BYTEA   NOT NULL,
    device_id  INTEGER NOT NULL,
    n          BIGINT  NOT NULL CHECK (n >= 0),
    PRIMARY KEY (account_id, device_id)
);

-- Attachment blobs live in files named by their address (in the data
-- directory every node mounts); this is their metadata.
CREATE TABLE attachments (
    address       BYTEA  PRIMARY KEY,
    size          BIGINT NOT NULL,
    stored_at_ms  BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    delete_hash   BYTEA
);
CREATE INDEX attachments_by_expiry ON attachments (expires_at_ms);

CREATE TABLE push_endpoints (
    account_id BYTEA   NOT NULL,
    device_id  INTEGER NOT NULL,
    url        TEXT    NOT NULL,
    set_at_ms  BIGINT  NOT NULL,
    PRIMARY KEY (account_id, device_id)
);
