-- Schema 17: a received envelope's ID keeps only the day it was claimed.
-- The claim is for deduplication and for the prune (IDs older than the
-- relay's message lifetime plus a margin go); a millisecond would tell a
-- seized phone's reader when each message arrived, which neither needs.
ALTER TABLE received_envelopes RENAME COLUMN received_at TO received_day;
UPDATE received_envelopes SET received_day = received_day / 86400000;
