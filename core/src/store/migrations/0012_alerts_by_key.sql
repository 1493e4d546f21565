-- Schema 12: alerts, their recipients and their holds are kept in the b-tree
-- of their primary key alone (WITHOUT ROWID). As rowid tables each also had an
-- index on that key, so storing a received alert wrote two pages where one
-- will do, and a delivery into a committee of 100 wrote its recipients twice.
-- The cascade's look for alerts not yet forwarded reads a partial index of
-- those alone, not every alert ever received.

CREATE TABLE alerts_by_key (
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
) WITHOUT ROWID;
INSERT INTO alerts_by_key
    (alert_id, via, sender, kind, scope, title, body, place, starts_at,
     expires_at, answers_wanted, received_at, forwarded, my_answer, my_answered_at)
    SELECT alert_id, via, sender, kind, scope, title, body, place, starts_at,
     expires_at, answers_wanted, received_at, forwarded, my_answer, my_answered_at
    FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_by_key RENAME TO alerts;
CREATE INDEX alerts_unforwarded ON alerts (received_at) WHERE forwarded = 0;

CREATE TABLE alert_recipients_by_key (
    alert_id BLOB NOT NULL,
    account BLOB NOT NULL,
    answer INTEGER,
    answered_at INTEGER,
    PRIMARY KEY (alert_id, account)
) WITHOUT ROWID;
INSERT INTO alert_recipients_by_key (alert_id, account, answer, answered_at)
    SELECT alert_id, account, answer, answered_at FROM alert_recipients;
DROP TABLE alert_recipients;
ALTER TABLE alert_recipients_by_key RENAME TO alert_recipients;

CREATE TABLE alert_holds_by_key (
    alert_id BLOB NOT NULL,
    committee_id BLOB NOT NULL,
    held_at INTEGER NOT NULL,
    PRIMARY KEY (alert_id, committee_id)
) WITHOUT ROWID;
INSERT INTO alert_holds_by_key (alert_id, committee_id, held_at)
    SELECT alert_id, committee_id, held_at FROM alert_holds;
DROP TABLE alert_holds;
ALTER TABLE alert_holds_by_key RENAME TO alert_holds;
