-- Schema 7: emergency alerts, their answers, and links between committees.

-- Outgoing envelopes the relay is to deliver ahead of others (alerts): 1.
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;

-- Each alert this device raised or received, once, whatever the number of
-- paths it came by. `sender` is who delivered it first (NULL when raised
-- here); `via` the committee or council it came through (or was raised in).
-- `forwarded` is set once the cascade from this device has been sent.
CREATE TABLE alerts (
    alert_id BLOB PRIMARY KEY,
    via BLOB NOT NULL,
    sender BLOB,
    kind INTEGER NOT NULL,
    scope INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    place TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    answers_wanted INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    forwarded INTEGER NOT NULL DEFAULT 0,
    my_answer INTEGER,
    my_answered_at INTEGER
);

-- Whom this device delivered an alert to, and each one's latest answer.
CREATE TABLE alert_recipients (
    alert_id BLOB NOT NULL,
    account BLOB NOT NULL,
    answer INTEGER,
    answered_at INTEGER,
    PRIMARY KEY (alert_id, account)
);

-- Alerts held for an organizer's approval before entering a committee.
CREATE TABLE alert_holds (
    alert_id BLOB NOT NULL,
    committee_id BLOB NOT NULL,
    held_at INTEGER NOT NULL,
    PRIMARY KEY (alert_id, committee_id)
);

-- Link proposals received by this organizer, waiting for an answer.
CREATE TABLE link_proposals (
    proposal_id BLOB PRIMARY KEY,
    from_account BLOB NOT NULL,
    proposal BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
