-- Rankfile device store, schema 1: identity, prekeys, libsignal state, messages.
-- Every table lives inside the SQLCipher-encrypted database.

-- This device's own identity: exactly one row.
CREATE TABLE local_identity (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    identity_key_pair BLOB NOT NULL,
    registration_id INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- Monotonic counters (next prekey IDs).
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- Remote identity keys as libsignal saw them, by libsignal address ("hex.device").
CREATE TABLE identities (
    address TEXT PRIMARY KEY,
    identity_key BLOB NOT NULL
) WITHOUT ROWID;

-- People this account knows. `successor` holds a new account that claims to
-- replace this contact, awaiting the user's decision.
CREATE TABLE contacts (
    account_id BLOB PRIMARY KEY,
    device_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    identity_key BLOB NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0,
    successor_account_id BLOB,
    successor_identity_key BLOB,
    added_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sessions (
    address TEXT PRIMARY KEY,
    record BLOB NOT NULL
) WITHOUT ROWID;

-- One-time EC prekeys. `handed_out` marks those already put in a bundle.
CREATE TABLE prekeys (
    id INTEGER PRIMARY KEY,
    record BLOB NOT NULL,
    handed_out INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE signed_prekeys (
    id INTEGER PRIMARY KEY,
    record BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- Kyber prekeys: one-time ones and last-resort ones.
CREATE TABLE kyber_prekeys (
    id INTEGER PRIMARY KEY,
    record BLOB NOT NULL,
    last_resort INTEGER NOT NULL,
    handed_out INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- Uses of last-resort Kyber prekeys: a repeat of the same triple is a replay.
CREATE TABLE kyber_last_resort_uses (
    kyber_id INTEGER NOT NULL,
    signed_id INTEGER NOT NULL,
    base_key BLOB NOT NULL,
    PRIMARY KEY (kyber_id, signed_id, base_key)
) WITHOUT ROWID;

CREATE TABLE sender_keys (
    address TEXT NOT NULL,
    distribution_id BLOB NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (address, distribution_id)
) WITHOUT ROWID;

-- Every envelope this device has processed, by the sender's envelope ID: a
-- redelivered envelope finds its row and changes nothing.
CREATE TABLE received_envelopes (
    envelope_id BLOB PRIMARY KEY,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;

-- 1:1 messages, both directions. state: 0 = visible, 1 = held (from an
-- identity change awaiting acceptance). Deduplication is `received_envelopes`'
-- job, so `envelope_id` carries no index (one fewer page per commit).
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    envelope_id BLOB NOT NULL,
    peer BLOB NOT NULL,
    outgoing INTEGER NOT NULL,
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    stored_at INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_peer ON messages (peer, id);

-- Envelopes encrypted and committed but not yet confirmed by the relay.
-- It holds a handful of rows at a time, so `envelope_id` needs no index.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    envelope_id BLOB NOT NULL,
    recipient BLOB NOT NULL,
    recipient_device INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
