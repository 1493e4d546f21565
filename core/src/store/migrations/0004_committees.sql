-- Schema 4: committees — their signed membership logs, their channels, and
-- which members hold our current sender key for each channel.

-- A committee this device belongs to (or belonged to).
CREATE TABLE committees (
    id BLOB PRIMARY KEY,
    joined_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Every entry of a committee's log this device holds, applied, rejected or
-- waiting for its parents: the state is always recomputed from these.
CREATE TABLE committee_entries (
    committee_id BLOB NOT NULL REFERENCES committees (id),
    hash BLOB NOT NULL,
    entry BLOB NOT NULL,
    signature BLOB NOT NULL,
    stored_at INTEGER NOT NULL,
    PRIMARY KEY (committee_id, hash)
) WITHOUT ROWID;

-- A committee's channels, as its log made them: which committee a channel
-- message belongs to, so its sender can be checked against the members.
CREATE TABLE committee_channels (
    channel_id BLOB PRIMARY KEY,
    committee_id BLOB NOT NULL REFERENCES committees (id),
    kind INTEGER NOT NULL
) WITHOUT ROWID;

-- Our current sender key for a channel (libsignal distribution ID). Replaced
-- by a new one when a member who held it is no longer a member.
CREATE TABLE channel_sender_keys (
    channel_id BLOB PRIMARY KEY,
    distribution_id BLOB NOT NULL
) WITHOUT ROWID;

-- Members we have sent our current sender key for a channel to.
CREATE TABLE channel_key_holders (
    channel_id BLOB NOT NULL,
    member BLOB NOT NULL,
    PRIMARY KEY (channel_id, member)
) WITHOUT ROWID;
