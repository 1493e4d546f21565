-- Schema 16: repairing what a recipient could not read.

-- What this device sent that it can send again if a recipient reports it
-- could not read it: by the handle its receipt names (8 bytes of a hash of
-- the ciphertext, see core/src/repair.rs) and the recipient (an account, or a
-- channel ID for a channel message), what it was: 1 a 1:1 text (`reference`:
-- the row of `messages`), 2 a channel post (a row of `channel_messages`),
-- 3 an alert, 4 this device's answer to one (`reference`: the alert ID). Only
-- references: the content stays where it lives, under its own timers.
-- Appended in the order of sending, with no other index: a send writes only
-- the table's last page; a receipt, which is rare, looks its handle up by
-- reading the table.
CREATE TABLE send_log (
    id INTEGER PRIMARY KEY,
    handle INTEGER NOT NULL,
    recipient BLOB NOT NULL,
    kind INTEGER NOT NULL,
    reference BLOB NOT NULL,
    sent_at INTEGER NOT NULL
);

-- Resends owed: `member` reported that it could not read what the send log
-- holds as (`handle`, `recipient`). Recorded in the transaction that takes
-- the receipt in; deleted in the one that sends it again.
CREATE TABLE resend_owed (
    handle INTEGER NOT NULL,
    recipient BLOB NOT NULL,
    member BLOB NOT NULL,
    PRIMARY KEY (handle, recipient, member)
) WITHOUT ROWID;

-- Messages this device could not read for want of something their sender
-- can give (its sender key, a working session). Kept as they came (they are
-- ciphertext) so that one whose sender key arrives late is read then, and so
-- the user sees that a message from the sender could not be read until it,
-- or its resend, arrives. `handle` names it in the receipt sent to the sender
-- (sent once: `receipt_sent`).
CREATE TABLE unreadable (
    dedup_id BLOB PRIMARY KEY,
    sender BLOB NOT NULL,
    device INTEGER NOT NULL,
    handle INTEGER NOT NULL,
    inner BLOB NOT NULL,
    inner_kind INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    stored_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    receipt_sent INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX unreadable_by_sender ON unreadable (sender, handle);

-- Messages read but not yet usable: they name a committee this device does
-- not hold yet (an alert the relay delivered ahead of the update that adds us,
-- say). Kept as they came, and read again when a committee arrives; their
-- ratchet step was not taken, so they decrypt again then.
CREATE TABLE waiting_envelopes (
    dedup_id BLOB PRIMARY KEY,
    envelope BLOB NOT NULL,
    sealed INTEGER NOT NULL,
    stored_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;
