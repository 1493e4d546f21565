-- Schema 20: an outbox envelope the relay could not store yet (a recipient's
-- mailbox was full) is parked: it waits until `not_before` (ms, the account's
-- clock), with a backoff that grows with `attempts`, and nothing else waits
-- behind it. A multi-recipient envelope that reached everyone but a few goes
-- again to those few only: `recipients` is narrowed to them, `access_key` to
-- the XOR of their keys, and `only_recipients` says the relay must deliver to
-- them alone.
ALTER TABLE outbox ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN only_recipients INTEGER NOT NULL DEFAULT 0;
