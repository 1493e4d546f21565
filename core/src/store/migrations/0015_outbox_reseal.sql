-- Schema 15: a sealed envelope that waited in the outbox past its sender
-- certificate is sealed again before it leaves.
--
-- A sealed envelope's sender certificate must be valid when the relay stores
-- it. One that waited longer than that (written while the phone was offline
-- for a day) is sealed again with a fresh certificate when the phone is back:
-- for that the outbox keeps the inner ciphertext, already encrypted to its
-- recipient (or, for a channel message, under the sender key) — nothing the
-- sealed bytes did not already hold — and when the certificate it was sealed
-- with expires.
ALTER TABLE outbox ADD COLUMN inner BLOB;
-- libsignal's CiphertextMessageType of `inner`.
ALTER TABLE outbox ADD COLUMN inner_kind INTEGER;
-- A channel message's recipients, 20-byte account IDs one after another.
ALTER TABLE outbox ADD COLUMN recipients BLOB;
ALTER TABLE outbox ADD COLUMN certificate_expires INTEGER;
