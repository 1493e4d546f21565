-- Schema 19: alerts signed by whoever raised them, answers counted across the
-- network, and alerts purged a set time after they expire.

-- Alerts kept before now carry no signature: they can be neither checked nor
-- passed on under the new rules, so they go, with everything kept about them.
DELETE FROM alert_recipients;
DELETE FROM alert_holds;
DELETE FROM alert_owed;
DELETE FROM alerts;

-- What the raiser signed, exactly (`raised`, a RaisedAlert message) and its
-- signature, forwarded unchanged; where and by whom it was raised, read from
-- them. `counter` names this device's counts of answers when they travel
-- back (random, chosen when first sent), `counts_version` the last one sent;
-- `rollcall_due_at` is set while counts or notes wait to be sent back along
-- the cascade (debounced), and only rows with it set are in its index.
ALTER TABLE alerts ADD COLUMN origin BLOB NOT NULL DEFAULT x'';
ALTER TABLE alerts ADD COLUMN raiser BLOB NOT NULL DEFAULT x'';
ALTER TABLE alerts ADD COLUMN raised_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN raised BLOB NOT NULL DEFAULT x'';
ALTER TABLE alerts ADD COLUMN signature BLOB NOT NULL DEFAULT x'';
ALTER TABLE alerts ADD COLUMN counter BLOB;
ALTER TABLE alerts ADD COLUMN counts_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN rollcall_due_at INTEGER;
CREATE INDEX alerts_rollcall_due ON alerts (rollcall_due_at)
    WHERE rollcall_due_at IS NOT NULL;

-- The committee each recipient was delivered the alert through (its answer
-- counts there), and whether it said the alert reached it first by another
-- path (then it answers, and is counted, there).
ALTER TABLE alert_recipients ADD COLUMN committee_id BLOB NOT NULL DEFAULT x'';
ALTER TABLE alert_recipients ADD COLUMN reached_before INTEGER NOT NULL DEFAULT 0;

-- Counts gathered from devices further down the cascade: per committee and
-- counting device (by its random counter name), the latest version only.
CREATE TABLE alert_counts (
    alert_id BLOB NOT NULL,
    committee_id BLOB NOT NULL,
    counter BLOB NOT NULL,
    version INTEGER NOT NULL,
    reached INTEGER NOT NULL,
    received INTEGER NOT NULL,
    coming INTEGER NOT NULL,
    cannot_come INTEGER NOT NULL,
    safe INTEGER NOT NULL,
    PRIMARY KEY (alert_id, committee_id, counter)
) WITHOUT ROWID;

-- Devices whose delivery of an alert came after another's: each is told,
-- once, that this phone is counted elsewhere.
CREATE TABLE alert_notes_owed (
    alert_id BLOB NOT NULL,
    account BLOB NOT NULL,
    PRIMARY KEY (alert_id, account)
) WITHOUT ROWID;
