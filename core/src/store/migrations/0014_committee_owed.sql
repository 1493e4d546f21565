-- Schema 14: what a committee change still owes others.

-- Committee entries owed to a member this device had no session with when it
-- made or forwarded them; `entry_hash` empty for the whole log (a member just
-- added). Recorded in the transaction that made the change; sent, and
-- deleted in one transaction, once a session with the member opens.
CREATE TABLE committee_owed (
    committee_id BLOB NOT NULL,
    account BLOB NOT NULL,
    entry_hash BLOB NOT NULL,
    PRIMARY KEY (committee_id, account, entry_hash)
) WITHOUT ROWID;

-- A member counts as holding our sender key only once the envelope carrying
-- it is at the relay: until then `envelope_id` names that outbox envelope.
ALTER TABLE channel_key_holders ADD COLUMN envelope_id BLOB;
CREATE INDEX channel_key_holders_unconfirmed
    ON channel_key_holders (envelope_id) WHERE envelope_id IS NOT NULL;
