-- Schema 10: members an alert could not go to yet, because this device had no
-- session with them when it delivered the alert into their committee (they
-- joined moments before, or their bundle could not be fetched). The alert goes
-- to them once a session is opened, unless it has expired or they have left.
CREATE TABLE alert_owed (
    alert_id BLOB NOT NULL,
    account BLOB NOT NULL,
    committee_id BLOB NOT NULL,
    held INTEGER NOT NULL,
    PRIMARY KEY (alert_id, account)
) WITHOUT ROWID;
