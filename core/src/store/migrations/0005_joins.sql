-- Schema 5: joining committees from invites.

-- Join requests this device received as an organizer, waiting to be admitted
-- (the organizer's device admits them after the receive commits, or on the
-- next start if it stopped first). The row holds the request as received
-- (with its secret) and is deleted once decided.
CREATE TABLE join_requests (
    committee_id BLOB NOT NULL,
    account BLOB NOT NULL,
    request BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (committee_id, account)
);

-- Joins this account asked for and is waiting on: the committee, the
-- organizer asked, and when.
CREATE TABLE pending_joins (
    committee_id BLOB PRIMARY KEY,
    organizer BLOB NOT NULL,
    requested_at INTEGER NOT NULL
);
