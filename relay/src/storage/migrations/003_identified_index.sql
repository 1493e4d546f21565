-- Identified (not sealed) messages per mailbox, counted before each identified
-- send against the smaller quota for senders the recipient has not accepted.
-- Partial: sealed sends, the hot path, never touch it.
CREATE INDEX messages_identified ON messages (account_id, device_id) WHERE sealed = 0;
