-- Schema 23: a contact's access key is the one carried by its latest message.
--
-- Every message carries its sender's access key. A message written before
-- its sender replaced the key (held in the sender's outbox while offline, or
-- sent again after a refusal) can arrive after the message announcing the
-- new one; taking its key then would put the stale key back, and every
-- sealed send to that contact would be refused until its next message. So
-- the send time of the message the key came from is kept, and a key from an
-- older message is not taken.
ALTER TABLE contacts ADD COLUMN access_key_sent_at INTEGER NOT NULL DEFAULT 0;
