-- Schema 2: sealed sender.

-- Small named values: this account's unidentified-access key, the relay's
-- trust root, the current sender certificate.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- A contact's unidentified-access key, learnt from its messages: with it we
-- send to the contact sealed, without naming ourselves to the relay.
ALTER TABLE contacts ADD COLUMN access_key BLOB;

-- How an outbox envelope goes out: sealed (with the recipient's access key) or
-- identified.
ALTER TABLE outbox ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN access_key BLOB;
